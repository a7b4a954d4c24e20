// The account bar's way to the admin screen, shown to administrators only. Small and in
// the main bundle; the screen itself is a lazy chunk.
import { navigate, adminPath } from "@/shared/lib/router";

const ShieldIcon = () => (
  <svg className="icon" viewBox="0 0 24 24" width="16" height="16" fill="none" stroke="currentColor" strokeWidth="2" strokeLinecap="round" strokeLinejoin="round" aria-hidden focusable="false">
    <path d="M12 3l8 3v6c0 4.5-3.4 8.2-8 9-4.6-.8-8-4.5-8-9V6z" />
  </svg>
);

export function AdminButton() {
  return (
    <button type="button" className="icon-btn" aria-label="Admin" title="Administration: users and invites" onClick={() => navigate(adminPath)}>
      <ShieldIcon />
    </button>
  );
}
