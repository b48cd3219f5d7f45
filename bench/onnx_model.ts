/**
 * A hand-written ONNX protobuf encoder for the one model the packed bench needs: Y = MatMulNBits(A,
 * B, scales) (com.microsoft contrib op, 4-bit, symmetric: default zero point 8), B and scales as
 * initializers. Field numbers from onnx/onnx.proto: ModelProto{ir_version=1, graph=7,
 * opset_import=8}, GraphProto{node=1, name=2, initializer=5, input=11, output=12},
 * NodeProto{input=1, output=2, name=3, op_type=4, attribute=5, domain=7}, AttributeProto{name=1,
 * i=3, type=20 (INT=2)}, TensorProto{dims=1, data_type=2 (FLOAT=1, UINT8=2), name=8, raw_data=9},
 * ValueInfoProto{name=1, type=2}, TypeProto{tensor_type=1}, TypeProto.Tensor{elem_type=1,
 * shape=2}, TensorShapeProto{dim=1}, Dimension{dim_value=1}, OperatorSetIdProto{domain=1, version=2}.
 */

class Pb {
  private readonly parts: number[] = [];

  private varint(v: number): void {
    let x = BigInt(v);
    do {
      let b = Number(x & 0x7fn);
      x >>= 7n;
      if (x > 0n) b |= 0x80;
      this.parts.push(b);
    } while (x > 0n);
  }

  int(field: number, v: number): this {
    this.varint(field << 3);
    this.varint(v);
    return this;
  }

  bytes(field: number, b: Uint8Array): this {
    this.varint((field << 3) | 2);
    this.varint(b.length);
    for (const x of b) this.parts.push(x);
    return this;
  }

  str(field: number, s: string): this {
    return this.bytes(field, new TextEncoder().encode(s));
  }

  msg(field: number, m: Pb): this {
    return this.bytes(field, m.done());
  }

  done(): Uint8Array {
    return Uint8Array.from(this.parts);
  }
}

function valueInfo(name: string, dims: number[]): Pb {
  const shape = new Pb();
  for (const d of dims) shape.msg(1, new Pb().int(1, d));
  return new Pb().str(1, name).msg(2, new Pb().msg(1, new Pb().int(1, 1).msg(2, shape)));
}

function tensor(name: string, dtype: number, dims: number[], raw: Uint8Array): Pb {
  const t = new Pb();
  for (const d of dims) t.int(1, d);
  return t.int(2, dtype).str(8, name).bytes(9, raw);
}

/**
 * MatMulNBits model bytes: A [M, K] float -> Y [M, N]; B uint8 [N, K/block, block/2] (element 2j in
 * the low nibble, 2j+1 in the high one, stored q = w/scale + 8), scales float [N * K/block].
 */
export function matMulNBitsModel(M: number, N: number, K: number, block: number, B: Uint8Array, scales: Float32Array, accuracyLevel: number): Uint8Array {
  const attr = (name: string, v: number): Pb => new Pb().str(1, name).int(3, v).int(20, 2);
  const node = new Pb()
    .str(1, 'A')
    .str(1, 'B')
    .str(1, 'scales')
    .str(2, 'Y')
    .str(3, 'mmnb')
    .str(4, 'MatMulNBits')
    .msg(5, attr('K', K))
    .msg(5, attr('N', N))
    .msg(5, attr('bits', 4))
    .msg(5, attr('block_size', block))
    .msg(5, attr('accuracy_level', accuracyLevel))
    .str(7, 'com.microsoft');
  const graph = new Pb()
    .msg(1, node)
    .str(2, 'packed_gemv')
    .msg(5, tensor('B', 2, [N, K / block, block / 2], B))
    .msg(5, tensor('scales', 1, [N * (K / block)], new Uint8Array(scales.buffer, scales.byteOffset, scales.byteLength)))
    .msg(11, valueInfo('A', [M, K]))
    .msg(12, valueInfo('Y', [M, N]));
  return new Pb()
    .int(1, 8)
    .msg(7, graph)
    .msg(8, new Pb().str(1, '').int(2, 17))
    .msg(8, new Pb().str(1, 'com.microsoft').int(2, 1))
    .done();
}
