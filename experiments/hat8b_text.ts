/**
 * The English text of the 8B runs (experiments/hat8b.ts reads its prompt from TEXT.repeat(4) and
 * generates teacher-forced over what follows; bench/llama_cpp.ts counts Llama 3 tokens of the same
 * text for its bytes-per-token figure).
 */
export const HAT8B_TEXT =
  'The committee met on Tuesday to discuss the budget for the coming year. After a long debate about the costs of the new library, ' +
  'the members agreed to postpone the decision until the city had published its report on the schools. Several residents spoke in ' +
  'favour of the plan, while others worried that the money would be better spent on roads and public transport. The chairman said ' +
  'that he would invite the architects to present their designs at the next meeting, which is planned for the first week of March.';
