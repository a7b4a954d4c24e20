// The account bar's way to the Tasks screen. Small and in the main bundle; the screen
// itself is a lazy chunk.
import { navigate, tasksPath } from "@/shared/lib/router";

const ClockIcon = () => (
  <svg className="icon" viewBox="0 0 24 24" width="16" height="16" fill="none" stroke="currentColor" strokeWidth="2" strokeLinecap="round" strokeLinejoin="round" aria-hidden focusable="false">
    <circle cx="12" cy="12" r="9" />
    <path d="M12 7v5l3 2" />
  </svg>
);

export function TasksButton() {
  return (
    <button type="button" className="icon-btn" aria-label="Tasks" title="Scheduled tasks" onClick={() => navigate(tasksPath)}>
      <ClockIcon />
    </button>
  );
}
