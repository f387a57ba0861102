/**
 * Why a file or directory could not be read (or made), in words for a one-line message: Node's own message
 * repeats the path and the syscall ("ENOTDIR: not a directory, scandir '/etc/passwd'"). `expected` is what the
 * path should have been, so that a file given where a directory belongs (or the other way round) says so; a
 * `new file` (one being created) whose path does not lead to a directory says that.
 *
 * @example fileReason(error, 'directory') // "it is not a directory"
 */
export function fileReason(error: unknown, expected: 'file' | 'directory' | 'new file' = 'file'): string {
  const { code, message } = error as NodeJS.ErrnoException;
  switch (code) {
    case 'ENOENT':
      // A file being made is missing its directory: the file itself is not meant to exist yet.
      return expected === 'new file' ? 'its directory does not exist' : 'it does not exist';
    case 'ENOTDIR':
      // readdir of a file; for a file, a part of its path that is a file.
      return expected === 'directory' ? 'it is not a directory' : expected === 'new file' ? 'a part of its path is a file, not a directory' : 'it does not exist';
    case 'EISDIR':
      return 'it is a directory, not a file';
    case 'EACCES':
    case 'EPERM':
      return 'permission denied';
    case 'ELOOP':
      return 'its symbolic links go round in a loop';
    case 'EROFS':
      return 'it is on a read-only file system';
    case 'ENOSPC':
      return 'the disk is full';
    case 'EDQUOT':
      return 'the disk quota is used up';
    default:
      return typeof message === 'string' ? message : String(error);
  }
}
