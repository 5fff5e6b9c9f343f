import { Private } from './dom';
import { IEnvironment } from './models';

/**
 * The card's environment list: one group per requirement set (builds of the same
 * requirements for other Python versions or pip options share it), each requirement on
 * its own line, cut with an ellipsis when long and shown whole on hover. The hosts may
 * share their environments' folder with other clusters: builds made for this cluster's
 * calls are marked.
 */
export function renderEnvironments(environments: IEnvironment[]): HTMLElement {
  const { el } = Private;
  const node = el('div', 'jr-Envs');
  if (environments.length === 0) {
    node.appendChild(
      el('div', 'jr-Empty', 'No requirement environments (cells ran without --reqs).')
    );
    return node;
  }
  const groups = new Map<string, IEnvironment[]>();
  for (const env of environments) {
    const key = [...env.requirements].sort().join('\n');
    const group = groups.get(key);
    if (group) {
      group.push(env);
    } else {
      groups.set(key, [env]);
    }
  }
  for (const [key, envs] of groups) {
    const group = el('div', 'jr-EnvGroup');
    const reqs = el('ul', 'jr-Reqs');
    for (const requirement of key ? key.split('\n') : ['(no requirements)']) {
      const item = el('li', 'jr-Req', requirement);
      item.title = requirement;
      reqs.appendChild(item);
    }
    group.appendChild(reqs);
    for (const env of envs) {
      const hosts = env.hosts.length === 1 ? '1 host' : `${env.hosts.length} hosts`;
      const row = el('div', 'jr-Env');
      // Each figure stays whole; a narrow card wraps the row between them.
      const parts = [env.hash.slice(0, 8), hosts, Private.bytes(env.size)];
      if (env.in_use) {
        parts.push('in use');
      }
      parts.forEach((part, i) => {
        row.append(i ? ' · ' : '', el('span', 'jr-Env-part', part));
      });
      row.title =
        `environment ${env.hash} on ${env.hosts.join(', ')}` +
        (env.built_here ? ', built for a call on this cluster' : ', built for another cluster');
      row.dataset.env = env.hash;
      row.dataset.builtHere = String(!!env.built_here);
      if (env.built_here) {
        const badge = el('span', 'jr-Badge jr-Env-here', 'built here');
        badge.title = 'Built for a call on this cluster';
        row.prepend(badge);
      }
      group.appendChild(row);
    }
    node.appendChild(group);
  }
  return node;
}
