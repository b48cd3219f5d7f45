/** Natural-log probability of entry k of one logits row: a stable log-softmax in float64. */
export function logSoftmaxAt(row: ArrayLike<number>, k: number): number {
  let mx = -Infinity;
  for (let i = 0; i < row.length; i++) if (row[i] > mx) mx = row[i];
  let z = 0;
  for (let i = 0; i < row.length; i++) z += Math.exp(row[i] - mx);
  return row[k] - mx - Math.log(z);
}
