// A chat's files as server state: directory listings (React Query, one entry per directory,
// fetched when the directory is opened) and the operations on files. Paths are relative to
// the sandbox's home, `/home/user`.
import { useMutation, useQueryClient } from "@tanstack/react-query";
import { request, requestResponse } from "@/shared/api/client";
import type { FileEntry, MoveRequest } from "@/shared/api/types";

export const fileKeys = {
  all: (chatId: string) => ["files", chatId] as const,
  lists: (chatId: string) => [...fileKeys.all(chatId), "list"] as const,
  list: (chatId: string, dir: string) => [...fileKeys.lists(chatId), dir] as const,
};

const base = (chatId: string) => `/api/v1/chats/${chatId}/files`;
const withPath = (path: string) => `?${new URLSearchParams({ path })}`;

export function listQuery(chatId: string, dir: string) {
  return {
    queryKey: fileKeys.list(chatId, dir),
    queryFn: ({ signal }: { signal: AbortSignal }) => request<FileEntry[]>(`${base(chatId)}${withPath(dir)}`, { signal }),
    staleTime: 2_000,
  } as const;
}

export function statPath(chatId: string, path: string, signal?: AbortSignal): Promise<FileEntry> {
  return request<FileEntry>(`${base(chatId)}/stat${withPath(path)}`, { signal });
}

export async function readFile(chatId: string, path: string, signal?: AbortSignal): Promise<Uint8Array> {
  const response = await requestResponse(`${base(chatId)}/content${withPath(path)}`, { signal });
  return new Uint8Array(await response.arrayBuffer());
}

export function writeFile(chatId: string, path: string, body: Blob | Uint8Array): Promise<FileEntry> {
  return request<FileEntry>(`${base(chatId)}/content${withPath(path)}`, { method: "PUT", body });
}

/** Saves a blob under a name through a temporary link: the API needs the bearer token, so a plain link cannot fetch it. */
function saveBlob(blob: Blob, name: string): void {
  const url = URL.createObjectURL(blob);
  const link = document.createElement("a");
  link.href = url;
  link.download = name;
  document.body.append(link);
  link.click();
  link.remove();
  setTimeout(() => URL.revokeObjectURL(url), 60_000);
}

export async function downloadFile(chatId: string, path: string, name: string): Promise<void> {
  const response = await requestResponse(`${base(chatId)}/content${withPath(path)}`);
  saveBlob(await response.blob(), name);
}

/** The workspace (or a directory of it) as a zip; the server streams it, the browser keeps it until saved. */
export async function downloadZip(chatId: string, dir: string, name: string): Promise<void> {
  const response = await requestResponse(`${base(chatId)}/zip${withPath(dir)}`);
  saveBlob(await response.blob(), name);
}

/** The mutations of the files panel; each refreshes the listings when it is done. */
export function useFileMutations(chatId: string) {
  const queryClient = useQueryClient();
  const refresh = () => queryClient.invalidateQueries({ queryKey: fileKeys.all(chatId) });
  const options = { onSettled: refresh } as const;
  return {
    write: useMutation({ mutationFn: ({ path, body }: { path: string; body: Blob | Uint8Array }) => writeFile(chatId, path, body), ...options }),
    remove: useMutation({ mutationFn: (path: string) => request<void>(`${base(chatId)}${withPath(path)}`, { method: "DELETE" }), ...options }),
    mkdir: useMutation({
      mutationFn: (path: string) => request<FileEntry>(`${base(chatId)}/directory${withPath(path)}`, { method: "POST" }),
      ...options,
    }),
    move: useMutation({ mutationFn: (body: MoveRequest) => request<FileEntry>(`${base(chatId)}/move`, { method: "POST", body }), ...options }),
  };
}
