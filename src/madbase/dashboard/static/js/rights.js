// What the signed-in admin may do, from GET /me: the same rules as the server's core/platform.py (patterns
// `*`, `<area>.*`, `*.<verb>`, exact rights, `!` exclusions winning). Used only to hide what would be refused:
// the server checks every call anyway.
const BUILTIN = {
  platform_admin: ['*'], owner: ['*'], developer: ['*', '!admins.*', '!keys.write', '!projects.delete'],
  read_only: ['*.read'],
};

function matches(pattern, right) {
  if (pattern === '*' || pattern === right) return true;
  const [area, verb] = right.split('.');
  return pattern === `${area}.*` || pattern === `*.${verb}`;
}

export function grants(patterns, right) {
  let granted = false;
  for (const p of patterns) {
    if (p.startsWith('!')) { if (matches(p.slice(1), right)) return false; }
    else if (!granted && matches(p, right)) granted = true;
  }
  return granted;
}

function roleSets(me) {
  if (me.rights) return me.rights;
  // an older server without `rights` in /me: the built-in roles by name (custom roles count as none)
  const out = { platform: [], projects: {} };
  for (const a of me.roles || []) {
    const set = BUILTIN[a.role] || [];
    if (a.project_ref == null) out.platform.push(set);
    else (out.projects[a.project_ref] ||= []).push(set);
  }
  return out;
}

export function allows(me, right, ref = null) {
  if (!me) return false;
  const scope = me.token_scope;
  if (scope) {
    if (scope.rights && !grants(scope.rights, right)) return false;
    if (scope.projects && (ref == null || !scope.projects.includes(ref))) return false;
  }
  const sets = roleSets(me);
  if (sets.platform.some((s) => grants(s, right))) return true;
  return ref != null && (sets.projects[ref] || []).some((s) => grants(s, right));
}
