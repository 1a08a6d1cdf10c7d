/** The benchmark workload: string keys, small object values (as an ETL cache holds). */
export interface Row {
  id: number;
  name: string;
  score: number;
  tags: string[];
}

export function makeEntries(n: number): Map<string, Row> {
  const map = new Map<string, Row>();
  for (let i = 0; i < n; i++) {
    map.set(`key-${i}`, { id: i, name: `user ${i}`, score: i * 1.5, tags: ['a', 'b'] });
  }
  return map;
}
