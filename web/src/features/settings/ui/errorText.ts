// What an error says to the user: the server's own message (it names the bad host, the limit
// exceeded), or a plain fallback.
import { ApiError } from "@/shared/api/client";

export function errorText(error: unknown): string {
  return error instanceof ApiError ? error.message : "Something went wrong. Try again.";
}
