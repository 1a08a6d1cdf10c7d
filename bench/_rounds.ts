import { throughput } from './throughput';
const subjects = process.argv.slice(3);
const r = throughput(100_000, Number(process.argv[2]), 9, subjects);
for (const s of r) console.log(s.subject.padEnd(32), 'min get', Math.min(...s.rounds.map((x) => x.getNs)).toFixed(1), '|', s.rounds.map((x) => x.getNs.toFixed(1)).join(' '));
