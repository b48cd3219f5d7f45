/**
 * The question checks of `tfree kg query` and the playground's KG form (src/models/boxte/query.ts):
 * names with typing mistakes get a suggestion, a date's text problem is named as such.
 */
import assert from 'node:assert/strict';
import { test } from 'node:test';
import { KgQueryError, dateLabel, nameId, timeIndex, type KgVocab } from '../../src/models/boxte/index.js';

const names = ['Barack Obama', 'China', 'Chinese Communist Party', 'Iran', 'Make statement', 'Make an appeal or request'];
const dated: KgVocab = { entities: names, relations: [], numTimes: 365, timeKind: 'date', origin: '2014-01-01' };

function message(fn: () => unknown): string {
  try {
    fn();
  } catch (e) {
    assert.ok(e instanceof KgQueryError, String(e));
    return e.message;
  }
  assert.fail('no KgQueryError');
}

test('kg query: an unknown name with a typing mistake suggests the close names (only substrings before)', () => {
  assert.equal(nameId(names, 'China', 'entity', 'head'), 1);
  assert.equal(message(() => nameId(names, 'Barak Obama', 'entity', 'head')), 'unknown entity "Barak Obama" (not among the model\'s 6 entities); did you mean "Barack Obama"?');
  assert.equal(message(() => nameId(names, 'Chna', 'entity', 'head')), 'unknown entity "Chna" (not among the model\'s 6 entities); did you mean "China"?');
  assert.equal(message(() => nameId(names, 'Make statment', 'relation', 'relation')), 'unknown relation "Make statment" (not among the model\'s 6 relations); did you mean "Make statement"?');
  // substring matches still come first; nothing close: no suggestion
  assert.match(message(() => nameId(names, 'chin', 'entity', 'head')), /did you mean "China", "Chinese Communist Party"\?$/);
  assert.equal(message(() => nameId(names, 'xyzzy', 'entity', 'head')), 'unknown entity "xyzzy" (not among the model\'s 6 entities)');
});

test('kg query: a date that is not YYYY-MM-DD or not a calendar day says so (it said "unknown date" with the range it lies in)', () => {
  assert.equal(timeIndex(dated, '2014-06-01'), 151);
  assert.equal(timeIndex(dated, '100'), 100);
  const range = "the model's timestamps are 2014-01-01 .. 2014-12-31";
  assert.equal(message(() => timeIndex(dated, '2014-6-1')), `date "2014-6-1" is neither YYYY-MM-DD nor a time id (${range})`);
  assert.equal(message(() => timeIndex(dated, '2014-02-30')), `date "2014-02-30" is not a calendar day (${range})`);
  assert.equal(message(() => timeIndex(dated, '2015-06-01')), `unknown date "2015-06-01": ${range}`);
  assert.equal(message(() => timeIndex(dated, '400')), `unknown date "400": ${range}`);
  const ids: KgVocab = { ...dated, timeKind: 'index', origin: null, numTimes: 12 };
  assert.equal(message(() => timeIndex(ids, '2014-06-01')), 'unknown date "2014-06-01": the model\'s timestamps are 0 .. 11');
});

test("kg query: under the reference's date ids (--date-ids reference) dates map to its ids and every label maps back", () => {
  const ref: KgVocab = { ...dated, dateIds: 'reference' };
  assert.equal(timeIndex(ref, '2014-01-29'), 28);
  assert.equal(timeIndex(ref, '2014-02-01'), 28, 'the two dates of a shared id');
  assert.equal(timeIndex(ref, '2014-06-01'), timeIndex(ref, '2014-05-31'));
  assert.equal(timeIndex(dated, '2014-02-01'), 31, 'calendar ids unchanged');
  assert.equal(dateLabel(ref, 28), '2014-01-29 = 2014-02-01');
  assert.equal(dateLabel(ref, 56), '56', 'an unused id is labelled by its index');
  assert.equal(dateLabel(ref, 364), '2014-12-31');
  for (let tau = 0; tau < 365; tau++) assert.equal(timeIndex(ref, dateLabel(ref, tau)), tau, dateLabel(ref, tau));
  assert.equal(message(() => timeIndex(ref, '2015-01-01')), 'unknown date "2015-01-01": the model\'s timestamps are 2014-01-01 .. 2014-12-31');
});
