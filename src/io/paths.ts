/** Path identity: whether two spellings name the same file or folder, also before it exists. */
import * as fs from 'node:fs';
import * as nodePath from 'node:path';

/** fs.statSync of `p`, or undefined where it does not exist or cannot be read. */
export function statOrUndefined(p: string): fs.Stats | undefined {
  try {
    return fs.statSync(p);
  } catch {
    return undefined;
  }
}

/** Where `p` is or would be: its nearest existing folder resolved through symlinks, plus the rest of the path. */
function canonicalPath(p: string): string {
  let cur = nodePath.resolve(p);
  const rest: string[] = [];
  while (!fs.existsSync(cur)) {
    const up = nodePath.dirname(cur);
    if (up === cur) break;
    rest.unshift(nodePath.basename(cur));
    cur = up;
  }
  try {
    cur = fs.realpathSync(cur);
  } catch {
    // unreadable: keep the resolved spelling
  }
  return nodePath.join(cur, ...rest);
}

/**
 * Whether paths `a` and `b` name the same file or folder however they are spelled: when both
 * exist, by device and inode (symlinks, `./`, hard links); when neither does, by where they would
 * be (canonicalPath); one existing and the other not are different paths.
 */
export function samePath(a: string, b: string): boolean {
  const sa = statOrUndefined(a);
  const sb = statOrUndefined(b);
  if (sa !== undefined && sb !== undefined) return sa.dev === sb.dev && sa.ino === sb.ino;
  if (sa !== undefined || sb !== undefined) return false;
  return canonicalPath(a) === canonicalPath(b);
}
