// An error under a form or an action: the server's own message (it says what was wrong: the
// bad host, the limit exceeded, the request already answered), or a plain fallback. Nothing
// when there is no error. Announced to screen readers.
import type { ReactNode } from "react";
import { ApiError } from "@/shared/api/client";

export function errorText(error: unknown): string {
  return error instanceof ApiError ? error.message : "That did not work. Try again.";
}

export function ErrorText({ error, prefix }: { error: unknown; prefix?: ReactNode }) {
  if (!error) return null;
  return (
    <p className="form-error" role="alert">
      {prefix}
      {prefix ? " " : null}
      {errorText(error)}
    </p>
  );
}
