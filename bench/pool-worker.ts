// Measures one pool subject alone in its process and prints JSON (see pool-bench.ts).
import { measureSubject } from './pool-bench';

measureSubject(process.argv[2] as string, Number(process.argv[3] ?? 3)).then(
  (r) => {
    process.stdout.write(JSON.stringify(r));
    process.exit(0); // tarn and generic-pool may leave timers behind
  },
  (err) => {
    console.error(err);
    process.exit(1);
  },
);
