/**
 * The HAT bench's synthetic text generator. Dependency-free on purpose: experiments/hat_train_ab.ts
 * calls it in children that load another checkout's library, with that checkout's Rng.
 */

/** Words from a fixed vocabulary with some punctuation and capitals, drawn with `rng`, until `bytes` are reached. */
export function syntheticWords(rng: { int(n: number): number }, bytes: number): Uint8Array {
  const vocab = 'the of and to a in that is was he for it with as his on be at by had are but from or have an they which one you were all we her she there would their will when who him been has more if no out do so can what up said about other into than its time only could new them man some these then two first may any like now my such make over our even most me state after also made many before must through back years much where your way well down should because each just those people how too little good very long being under never day same another know while last might us great old year off come since against go came right used take three'.split(' ');
  const parts: string[] = [];
  let n = 0;
  while (n < bytes) {
    let w = vocab[rng.int(vocab.length)];
    if (rng.int(12) === 0) w += rng.int(3) === 0 ? '.' : ',';
    if (parts.length === 0 || parts[parts.length - 1].endsWith('.')) w = w[0].toUpperCase() + w.slice(1);
    parts.push(w);
    n += w.length + 1;
  }
  return new TextEncoder().encode(parts.join(' '));
}
