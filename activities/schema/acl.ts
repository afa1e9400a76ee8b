// GRANTs from a catalog ACL (aclitem[] as text), for objects.ownership.
import { ident } from '../../lib/ident';

const PRIVILEGES: Record<string, string> = {
  r: 'SELECT',
  a: 'INSERT',
  w: 'UPDATE',
  d: 'DELETE',
  D: 'TRUNCATE',
  x: 'REFERENCES',
  t: 'TRIGGER',
  X: 'EXECUTE',
  U: 'USAGE',
  C: 'CREATE',
  c: 'CONNECT',
  T: 'TEMPORARY',
  m: 'MAINTAIN',
};

interface AclItem {
  grantee: string | null; // null: PUBLIC
  privileges: { name: string; grantable: boolean }[];
}

/** Parse `grantee=privs/grantor`; role names with special characters are double-quoted. */
export function parseAclItem(text: string): AclItem {
  let i = 0;
  let grantee = '';
  if (text[0] === '"') {
    i = 1;
    while (i < text.length) {
      if (text[i] === '"' && text[i + 1] === '"') {
        grantee += '"';
        i += 2;
      } else if (text[i] === '"') {
        i++;
        break;
      } else grantee += text[i++];
    }
  } else {
    while (i < text.length && text[i] !== '=') grantee += text[i++];
  }
  const privs = text.slice(i + 1, text.lastIndexOf('/'));
  const privileges: AclItem['privileges'] = [];
  for (let j = 0; j < privs.length; j++) {
    const name = PRIVILEGES[privs[j]];
    if (!name) continue;
    const grantable = privs[j + 1] === '*';
    if (grantable) j++;
    privileges.push({ name, grantable });
  }
  return { grantee: grantee === '' ? null : grantee, privileges };
}

/** REVOKE/GRANT statements reproducing `acl` on `target` (null ACL: the defaults, nothing to do). */
export function aclStatements(kind: string, target: string, owner: string, acl: string[] | null): string | null {
  if (!acl) return null;
  const on = kind === 'VIEW' || kind === 'MATERIALIZED VIEW' ? 'TABLE' : kind;
  const out = [`REVOKE ALL ON ${on} ${target} FROM PUBLIC`];
  for (const item of acl.map(parseAclItem)) {
    if (item.grantee === owner) continue;
    const to = item.grantee === null ? 'PUBLIC' : ident(item.grantee);
    for (const grantable of [false, true]) {
      const privs = item.privileges.filter((p) => p.grantable === grantable).map((p) => p.name);
      if (privs.length) out.push(`GRANT ${privs.join(', ')} ON ${on} ${target} TO ${to}${grantable ? ' WITH GRANT OPTION' : ''}`);
    }
  }
  return out.join(';\n');
}
