// The files of a drop: plain files, and the contents of dropped folders (read through the
// browser's entries API), each with its path relative to the drop.
export interface DroppedFile {
  file: File;
  relativePath: string;
}

function fileOf(entry: FileSystemFileEntry): Promise<File> {
  return new Promise((resolve, reject) => entry.file(resolve, reject));
}

/** Every entry of a directory: the API hands them out in batches until an empty one. */
async function childrenOf(entry: FileSystemDirectoryEntry): Promise<FileSystemEntry[]> {
  const reader = entry.createReader();
  const all: FileSystemEntry[] = [];
  for (;;) {
    const batch = await new Promise<FileSystemEntry[]>((resolve, reject) => reader.readEntries(resolve, reject));
    if (batch.length === 0) return all;
    all.push(...batch);
  }
}

export async function droppedFiles(data: DataTransfer): Promise<DroppedFile[]> {
  // Entries must be taken while the drop event is being handled; reading them may wait.
  const entries = [...data.items].filter((item) => item.kind === "file").map((item) => item.webkitGetAsEntry?.() ?? null);
  if (entries.length === 0 || entries.some((entry) => entry === null)) {
    return [...data.files].map((file) => ({ file, relativePath: file.name }));
  }
  const out: DroppedFile[] = [];
  const walk = async (entry: FileSystemEntry, prefix: string): Promise<void> => {
    if (entry.isFile) {
      out.push({ file: await fileOf(entry as FileSystemFileEntry), relativePath: `${prefix}${entry.name}` });
    } else if (entry.isDirectory) {
      for (const child of await childrenOf(entry as FileSystemDirectoryEntry)) await walk(child, `${prefix}${entry.name}/`);
    }
  };
  for (const entry of entries) if (entry) await walk(entry, "");
  return out;
}
