export * from './tensor.js';
export * from './ops/shape.js';
export * from './ops/elementwise.js';
export * from './ops/reduce.js';
export * from './ops/matmul.js';
export * from './ops/fused.js';
export * from './ops/attention.js';
export {
  kernels,
  setBackend,
  withBackend,
  backendName,
  availableBackends,
  nativeBackend,
  isaEnvError,
  NATIVE_ISAS,
  jsKernels,
  UnaryOp,
  BinaryOp,
  ReduceOp,
  type AttentionArgs,
  type Kernels,
  type NativeExtras,
  type NativeCpuInfo,
  type BackendName,
} from './kernels/index.js';
export { toBf16, bf16ToF32, bf16Bits } from './kernels/js_bf16.js';
export * from './pool.js';
