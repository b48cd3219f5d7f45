/** Test fixture: the small Llama-style LM from src/models/llama under its test name. */
export { LlamaLM as TinyLlama, type LlamaLMConfig as TinyLlamaConfig } from '../../src/models/llama/model.js';
