// numpy header (src/protocol/numpy.ts): dtype map, C/F-order, broadcasting, byte order, 0-d,
// unsupported kinds kept opaque, and headers that lie about the frame.
import assert from "node:assert/strict";
import { test } from "node:test";
import { DaskError } from "../../src/errors.ts";
import { NDARRAY_TYPE_PICKLE, NdArray, deserializeNumpy, dtypeOf, parseDtype, serializeNumpy } from "../../src/protocol/numpy.ts";
import { VECTORS_2022, vectorFiles, splitWireFrames, errorCode } from "../helpers/env.ts";

function bytesOf(view: ArrayBufferView): Uint8Array {
  return new Uint8Array(view.buffer, view.byteOffset, view.byteLength);
}

const code = (fn: () => unknown): string => errorCode(fn);

const framesOf = splitWireFrames;

test("dtypeOf names every typed array as numpy does", () => {
  assert.equal(dtypeOf(new Float64Array(1)), "<f8");
  assert.equal(dtypeOf(new Float32Array(1)), "<f4");
  assert.equal(dtypeOf(new Int32Array(1)), "<i4");
  assert.equal(dtypeOf(new Uint32Array(1)), "<u4");
  assert.equal(dtypeOf(new Int16Array(1)), "<i2");
  assert.equal(dtypeOf(new Uint16Array(1)), "<u2");
  assert.equal(dtypeOf(new Int8Array(1)), "|i1");
  assert.equal(dtypeOf(new Uint8Array(1)), "|u1");
  assert.equal(dtypeOf(new BigInt64Array(1)), "<i8");
  assert.equal(dtypeOf(new BigUint64Array(1)), "<u8");
  assert.equal(code(() => dtypeOf(new DataView(new ArrayBuffer(1)))), "DASK_ERR_NUMPY_DTYPE");
});

test("parseDtype accepts numeric kinds, normalises byte order, refuses the rest", () => {
  assert.equal(parseDtype(">f8")?.little, "<f8");
  assert.equal(parseDtype(">f8")?.bigEndian, true);
  assert.equal(parseDtype("=i4")?.little, "<i4");
  assert.equal(parseDtype("<M8[ns]")?.little, "<M8[ns]");
  for (const bad of ["<U5", "|S3", "|V16", "|O", "<M8", "<f8[ns]", "<i3", "f8", ""]) {
    assert.equal(parseDtype(bad), undefined, bad);
  }
});

test("serializeNumpy: Float64Array -> the header of §4.5, frame is a view of the data", () => {
  const arr = Float64Array.from([0, 1, 2, 3, 4]);
  const { header, frames } = serializeNumpy(arr);
  assert.deepEqual(header, {
    serializer: "dask",
    type: "numpy.ndarray",
    "type-serialized": NDARRAY_TYPE_PICKLE,
    "sub-header": { dtype: [0, "<f8"], shape: [5], strides: [8], writeable: [true] },
  });
  assert.equal(frames.length, 1);
  assert.equal(frames[0]!.buffer, arr.buffer);
  assert.equal(frames[0]!.byteLength, 40);
});

test("serializeNumpy: a 2-D NdArray gets C-order strides", () => {
  const nd = new NdArray(Int32Array.from([1, 2, 3, 4, 5, 6]), [2, 3]);
  const sub = serializeNumpy(nd).header["sub-header"] as Record<string, unknown>;
  assert.deepEqual(sub, { dtype: [0, "<i4"], shape: [2, 3], strides: [12, 4], writeable: [true] });
  const cube = new NdArray(new Float32Array(24), [2, 3, 4]);
  assert.deepEqual((serializeNumpy(cube).header["sub-header"] as Record<string, unknown>)["strides"], [48, 16, 4]);
});

test("NdArray refuses a shape that does not match its data or a dtype its data cannot hold", () => {
  assert.equal(code(() => new NdArray(new Int32Array(5), [2, 3])), "DASK_ERR_NUMPY_HEADER");
  assert.equal(code(() => new NdArray(new Int32Array(6), [2, -3])), "DASK_ERR_NUMPY_HEADER");
  assert.equal(code(() => new NdArray(new Int32Array(6), [6], "<f8")), "DASK_ERR_NUMPY_DTYPE");
  assert.equal(new NdArray(new Float64Array(6), [3], "<c16").dtype, "<c16"); // 3 complex = 6 floats
});

test("round trip through the header for every native dtype (1-D -> typed array)", () => {
  const samples: ArrayBufferView[] = [
    Float64Array.from([1.5, -2, Infinity]),
    Float32Array.from([1.5, -2]),
    Int32Array.from([-1, 2 ** 31 - 1]),
    Uint32Array.from([2 ** 32 - 1]),
    Int16Array.from([-300]),
    Uint16Array.from([65535]),
    Int8Array.from([-128, 127]),
    BigInt64Array.from([-(2n ** 63n), 5n]),
    BigUint64Array.from([2n ** 64n - 1n]),
  ];
  for (const arr of samples) {
    const { header, frames } = serializeNumpy(arr as Float64Array);
    const back = deserializeNumpy(header["sub-header"] as Record<string, unknown>, frames);
    assert.equal(Object.prototype.toString.call(back), Object.prototype.toString.call(arr));
    assert.deepEqual(back, arr);
  }
});

test("uint8, bool, complex, datetime and 0-d arrays come back as NdArray", () => {
  const u1 = deserializeNumpy({ dtype: [0, "|u1"], shape: [3], strides: [1], writeable: [true] }, [Uint8Array.from([1, 2, 3])]);
  assert.ok(u1 instanceof NdArray);
  assert.equal(u1.dtype, "|u1");
  const b1 = deserializeNumpy({ dtype: [0, "|b1"], shape: [2], strides: [1], writeable: [true] }, [Uint8Array.from([1, 0])]);
  assert.ok(b1 instanceof NdArray && b1.dtype === "|b1");
  const c16 = deserializeNumpy({ dtype: [0, "<c16"], shape: [1], strides: [16], writeable: [true] }, [bytesOf(Float64Array.from([1, -1]))]);
  assert.ok(c16 instanceof NdArray);
  assert.deepEqual([...(c16.data as Float64Array)], [1, -1]);
  const m8 = deserializeNumpy({ dtype: [0, "<M8[ns]"], shape: [1], strides: [8], writeable: [true] }, [bytesOf(BigInt64Array.from([1700000000000000000n]))]);
  assert.ok(m8 instanceof NdArray && m8.dtype === "<M8[ns]");
  assert.equal((m8.data as BigInt64Array)[0], 1700000000000000000n);
  const zeroD = deserializeNumpy({ dtype: [0, "<f8"], shape: [], strides: [], writeable: [true] }, [bytesOf(Float64Array.from([7]))]);
  assert.ok(zeroD instanceof NdArray);
  assert.deepEqual(zeroD.shape, []);
  assert.equal((zeroD.data as Float64Array)[0], 7);
});

test("Fortran-order frames are reordered to C order", () => {
  // numpy: np.asfortranarray([[1, 2, 3], [4, 5, 6]], dtype="<i4") -> memory 1 4 2 5 3 6, strides (4, 8)
  const frame = bytesOf(Int32Array.from([1, 4, 2, 5, 3, 6]));
  const nd = deserializeNumpy({ dtype: [0, "<i4"], shape: [2, 3], strides: [4, 8], writeable: [true] }, [frame]);
  assert.ok(nd instanceof NdArray);
  assert.deepEqual([...(nd.data as Int32Array)], [1, 2, 3, 4, 5, 6]);
  assert.deepEqual(nd.shape, [2, 3]);
});

test("broadcast_to expands zero-strided axes", () => {
  // np.broadcast_to(np.arange(3.0), (2, 3)): shape (1, 3) on the wire, strides (0, 8)
  const frame = bytesOf(Float64Array.from([0, 1, 2]));
  const nd = deserializeNumpy({ dtype: [0, "<f8"], shape: [1, 3], strides: [0, 8], writeable: [false], broadcast_to: [2, 3] }, [frame]);
  assert.ok(nd instanceof NdArray);
  assert.deepEqual(nd.shape, [2, 3]);
  assert.deepEqual([...(nd.data as Float64Array)], [0, 1, 2, 0, 1, 2]);
});

test("big-endian frames are swapped; misaligned frames are copied, aligned ones shared", () => {
  const be = new Uint8Array(16);
  new DataView(be.buffer).setFloat64(0, 1.25, false);
  new DataView(be.buffer).setFloat64(8, -3, false);
  assert.deepEqual(deserializeNumpy({ dtype: [0, ">f8"], shape: [2], strides: [8], writeable: [true] }, [be]), Float64Array.from([1.25, -3]));
  const backing = new Uint8Array(17);
  backing.set(bytesOf(Float64Array.from([9, 10])), 1);
  const odd = deserializeNumpy({ dtype: [0, "<f8"], shape: [2], strides: [8], writeable: [true] }, [backing.subarray(1)]);
  assert.deepEqual(odd, Float64Array.from([9, 10]));
  const aligned = bytesOf(Float64Array.from([1, 2]));
  const shared = deserializeNumpy({ dtype: [0, "<f8"], shape: [2], strides: [8], writeable: [true] }, [aligned]) as Float64Array;
  assert.equal(shared.buffer, aligned.buffer);
});

test("object arrays, custom dtypes and strings are unsupported (kept opaque by the caller)", () => {
  assert.equal(deserializeNumpy({ pickle: true }, [new Uint8Array(3)]), undefined);
  assert.equal(deserializeNumpy({ dtype: [1, new Uint8Array([0x80])], shape: [1], strides: [8], writeable: [true] }, [new Uint8Array(8)]), undefined);
  assert.equal(deserializeNumpy({ dtype: [0, "<U3"], shape: [1], strides: [12], writeable: [true] }, [new Uint8Array(12)]), undefined);
});

test("headers that lie about the frame are coded ProtocolErrors", () => {
  const f = new Uint8Array(32);
  const h = (extra: Record<string, unknown>) => ({ dtype: [0, "<f8"], shape: [4], strides: [8], writeable: [true], ...extra });
  assert.equal(code(() => deserializeNumpy(h({ shape: [5] }), [f])), "DASK_ERR_NUMPY_HEADER");
  assert.equal(code(() => deserializeNumpy(h({ strides: [16] }), [f])), "DASK_ERR_NUMPY_HEADER");
  assert.equal(code(() => deserializeNumpy(h({ strides: [-8] }), [f])), "DASK_ERR_NUMPY_HEADER");
  assert.equal(code(() => deserializeNumpy(h({ strides: [8, 8] }), [f])), "DASK_ERR_NUMPY_HEADER");
  assert.equal(code(() => deserializeNumpy(h({ shape: "4" }), [f])), "DASK_ERR_NUMPY_HEADER");
  assert.equal(code(() => deserializeNumpy(h({ shape: [2 ** 40, 2 ** 40] }), [f])), "DASK_ERR_NUMPY_HEADER");
  assert.equal(code(() => deserializeNumpy(h({}), [f, f])), "DASK_ERR_NUMPY_HEADER");
  // an empty array needs no bytes at all
  assert.deepEqual(deserializeNumpy(h({ shape: [0] }), [new Uint8Array(0)]), new Float64Array(0));
});

test("vec 0059: the float64 array a real client scattered", () => {
  const file = vectorFiles(VECTORS_2022).find((v) => v.name.startsWith("0059_"));
  assert.ok(file);
  const frames = framesOf(file.bytes);
  // frames: [msg, bytes sub-header, bytes, pickle sub-header, pickle, ndarray sub-header, ndarray]
  assert.deepEqual(deserializeNumpy({ dtype: [0, "<f8"], shape: [4], strides: [8], writeable: [true] }, [frames[6]!]), Float64Array.from([0, 1, 2, 3]));
  // The ndarray sub-header carries exactly our constant type pickle (msgpack bin8 of 32 bytes).
  const sub = Buffer.from(frames[5]!);
  assert.ok(sub.includes(Buffer.concat([Buffer.from([0xc4, NDARRAY_TYPE_PICKLE.length]), Buffer.from(NDARRAY_TYPE_PICKLE)])));
});
