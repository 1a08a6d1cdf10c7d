import { expect } from 'chai';
import fc from 'fast-check';
import {
  FormatError,
  decodeFile,
  encodeFrameHeader,
  encodeHeader,
  encodePayload,
  encodeTrailer,
} from '../lib/store/file-format';

/** Encodes entries the way FileStore does, in frames of `per` entries. */
function encode(name: string, entries: Array<[unknown, unknown]>, per: number): Buffer {
  const parts = [encodeHeader({ name, savedAt: 1, entries: entries.length })];
  let frames = 0;
  for (let i = 0; i < entries.length; i += per) {
    const payload = encodePayload(entries.slice(i, i + per).flat());
    parts.push(encodeFrameHeader(payload), payload);
    frames++;
  }
  parts.push(encodeTrailer(frames, entries.length));
  return Buffer.concat(parts);
}

function decodeEntries(buf: Buffer): Array<[unknown, unknown]> {
  const out: Array<[unknown, unknown]> = [];
  for (const pairs of decodeFile(buf).batches) {
    for (let i = 0; i < pairs.length; i += 2) out.push([pairs[i], pairs[i + 1]]);
  }
  return out;
}

// Values v8.serialize supports, nested.
const leaf = fc.oneof(
  fc.string(),
  fc.integer(),
  fc.double(),
  fc.bigInt(),
  fc.boolean(),
  fc.constant(null),
  fc.constant(undefined),
  fc.date({ noInvalidDate: true }),
  fc.uint8Array({ maxLength: 8 }),
);
const value = fc.letrec((tie) => ({
  value: fc.oneof(
    { depthSize: 'small' },
    leaf,
    fc.array(tie('value'), { maxLength: 4 }),
    fc.dictionary(fc.string({ maxLength: 5 }), tie('value'), { maxKeys: 4, noNullPrototype: true }),
    fc.array(fc.tuple(fc.string({ maxLength: 4 }), tie('value')), { maxLength: 3 }).map((e) => new Map(e)),
  ),
})).value;
const entries = fc.array(fc.tuple(fc.oneof(fc.string(), fc.integer(), fc.bigInt()), value), {
  maxLength: 40,
});

describe('file format', () => {
  describe('property: round trip', () => {
    it('decodes exactly what was encoded, types and order intact', () => {
      fc.assert(
        fc.property(entries, fc.integer({ min: 1, max: 7 }), fc.string({ minLength: 1 }), (es, per, name) => {
          const buf = encode(name, es, per);
          const { meta } = decodeFile(buf);
          expect(meta.name).to.equal(name);
          expect(decodeEntries(buf)).to.deep.equal(es);
        }),
        { numRuns: 200 },
      );
    });
  });

  describe('property: damage is detected', () => {
    const nonEmpty = fc.array(fc.tuple(fc.string(), value), { minLength: 0, maxLength: 20 });

    it('rejects every truncation', () => {
      fc.assert(
        fc.property(nonEmpty, fc.integer({ min: 1, max: 5 }), fc.nat(), (es, per, cut) => {
          const buf = encode('t', es, per);
          const at = cut % buf.length; // strictly shorter than the file
          expect(() => decodeFile(buf.subarray(0, at))).to.throw(FormatError);
        }),
        { numRuns: 300 },
      );
    });

    it('rejects every single-byte change', () => {
      fc.assert(
        fc.property(
          nonEmpty,
          fc.integer({ min: 1, max: 5 }),
          fc.nat(),
          fc.integer({ min: 1, max: 255 }),
          (es, per, pos, flip) => {
            const buf = Buffer.from(encode('t', es, per));
            const at = pos % buf.length;
            buf[at] = (buf[at] as number) ^ flip;
            expect(() => decodeFile(buf)).to.throw(FormatError);
          },
        ),
        { numRuns: 500 },
      );
    });

    it('rejects bytes appended after the trailer', () => {
      const buf = encode('t', [['a', 1]], 1);
      expect(() => decodeFile(Buffer.concat([buf, Buffer.from([0])]))).to.throw(FormatError);
    });

    it('rejects a frame that is not a list of entries, even with a valid CRC', () => {
      const payload = encodePayload({ not: 'an array' } as unknown as unknown[]);
      const buf = Buffer.concat([
        encodeHeader({ name: 't', savedAt: 1, entries: 0 }),
        encodeFrameHeader(payload),
        payload,
        encodeTrailer(1, 0),
      ]);
      expect(() => decodeFile(buf)).to.throw(FormatError, /not a list of entries/);
    });
  });
});
