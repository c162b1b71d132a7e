// How `migrate` reports: one row per source object (a table, or JSON with --json) and a
// count per result.
import type { Row } from './migrate.js';

export interface Summary {
  objects: number;
  copied: number;
  would_copy: number;
  skipped: number;
  failed: number;
}

export function summarize(rows: Row[]): Summary {
  const n = (r: Row['result']) => rows.filter((x) => x.result === r).length;
  return { objects: rows.length, copied: n('copied'), would_copy: n('would-copy'), skipped: n('skipped'), failed: n('failed') };
}

function resultText(r: Row): string {
  switch (r.result) {
    case 'copied':
      return `copied (${r.method})`;
    case 'would-copy':
      return `would copy (${r.method})`;
    case 'skipped':
      return `skipped: ${r.reason}`;
    case 'failed':
      return `FAILED: ${r.reason}`;
  }
}

export function renderTable(rows: Row[]): string {
  const head = ['CLASS', 'KEY TYPE', 'LABEL', 'ID', 'RESULT'];
  const body = rows.map((r) => [r.class.replace(/^CKO_/, ''), (r.key_type ?? '-').replace(/^CKK_/, ''), r.label || '-', r.id || '-', resultText(r)]);
  const widths = head.map((h, i) => Math.max(h.length, ...body.map((b) => b[i]!.length)));
  const fmt = (cells: string[]) => cells.map((c, i) => (i === cells.length - 1 ? c : c.padEnd(widths[i]!))).join('  ').trimEnd();
  const lines = [fmt(head), ...body.map(fmt)];
  rows.forEach((r) => {
    for (const n of r.notes) lines.push(`  note (${r.class.replace(/^CKO_/, '')} "${r.label}" id ${r.id || '-'}): ${n}`);
  });
  return lines.join('\n');
}

export function summaryLine(s: Summary, dryRun: boolean): string {
  const done = dryRun ? `${s.would_copy} would be copied` : `${s.copied} copied`;
  return `${s.objects} object(s) on the source: ${done}, ${s.skipped} skipped, ${s.failed} failed`;
}
