// What the secrets form checks before it sends: the server decides (reserved names, sizes),
// this only catches a name that can never be an environment variable while it is typed.

/** The names that make the user's turns use their own model credentials. */
export const modelCredentialNames = ["ANTHROPIC_API_KEY", "ANTHROPIC_AUTH_TOKEN", "CLAUDE_CODE_OAUTH_TOKEN", "ANTHROPIC_BASE_URL"] as const;

const NAME = /^[A-Za-z_][A-Za-z0-9_]*$/;

/** Why `name` cannot be a secret's name, or null when it may be (the server has the last word). */
export function secretNameProblem(name: string): string | null {
  if (name === "") return null;
  if (name.length > 128) return "At most 128 characters.";
  if (!NAME.test(name)) return "Letters, digits and _ only, not starting with a digit.";
  return null;
}

export function isModelCredential(name: string): boolean {
  return (modelCredentialNames as readonly string[]).includes(name);
}
