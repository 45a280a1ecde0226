//! Delta-encoded Parquet integer columns, written in one pass over the values.
//!
//! Ids, counts and money are written `DELTA_BINARY_PACKED`: sorted ids become a few bits a
//! row, and packed deltas are smaller than zstd's plain values and cheaper to make. arrow-rs
//! 60 gets there through its generic column writer: the array is converted value by value,
//! scanned for page statistics, buffered, then delta-encoded a value at a time; at 10M
//! customers that was an eighth of the run's CPU. Here each page's values are read from the
//! array once, their statistics kept as they go by, and each block of 128 deltas bit-packed
//! in four miniblocks of 32 — the format's own layout (`parquet-format`'s Encodings.md), as
//! arrow-rs writes it. The chunk gets statistics, a column index and an offset index like
//! any other, and is spliced into the row group through
//! [`SerializedRowGroupWriter::append_column`], as [`super::keyed`] does.
//!
//! [`SerializedRowGroupWriter::append_column`]: parquet::file::writer::SerializedRowGroupWriter::append_column

use arrow_array::cast::AsArray;
use arrow_array::types::{
    Date32Type, Decimal128Type, Int32Type, Int64Type, UInt16Type, UInt32Type, UInt64Type,
};
use arrow_array::{Array, ArrowPrimitiveType};
use arrow_schema::{DataType, Field};
use bytes::Bytes;
use parquet::basic::{
    BoundaryOrder, Compression, Encoding, EncodingMask, PageType, SortOrder, Type,
};
use parquet::column::page::{CompressedPage, Page, PageWriter};

use super::keyed::{SplicedChunk, no_nulls, varint};
use parquet::errors::{ParquetError, Result};
use parquet::file::metadata::{
    ColumnChunkMetaData, ColumnIndexBuilder, OffsetIndexBuilder, PageEncodingStats,
};
use parquet::file::statistics::ValueStatistics;
use parquet::file::writer::{SerializedPageWriter, TrackedWrite};
use parquet::schema::types::ColumnDescPtr;

/// Rows per data page (as [`super::keyed`]).
const PAGE_ROWS: usize = 20_480;
/// Deltas per block and per miniblock: arrow-rs's layout, 128 in four miniblocks of 32.
const BLOCK: usize = 128;
const MINIBLOCK: usize = 32;
const MINIBLOCKS: usize = BLOCK / MINIBLOCK;

/// Whether `field` is written by [`encode`]: a column without nulls of an integer type whose
/// Parquet column is `DELTA_BINARY_PACKED` (`encoding`).
pub fn is_delta(field: &Field, encoding: Option<Encoding>) -> bool {
    encoding == Some(Encoding::DELTA_BINARY_PACKED)
        && !field.is_nullable()
        && match field.data_type() {
            DataType::UInt16
            | DataType::UInt32
            | DataType::UInt64
            | DataType::Int32
            | DataType::Int64
            | DataType::Date32 => true,
            DataType::Decimal128(precision, _) => *precision <= 18,
            _ => false,
        }
}

/// Encodes `array` (see [`is_delta`]) as the column chunk of `descr`.
pub fn encode(descr: ColumnDescPtr, array: &dyn Array) -> Result<SplicedChunk> {
    no_nulls(&descr, array)?;
    // Each value as the column's physical type (INT32 or INT64), sign-extended to 64 bits:
    // unsigned 32-bit values keep their bits, as arrow-rs stores them.
    match array.data_type() {
        DataType::UInt16 => chunk(descr, values::<UInt16Type>(array), i64::from),
        DataType::UInt32 => chunk(descr, values::<UInt32Type>(array), |v| i64::from(v as i32)),
        DataType::Int32 => chunk(descr, values::<Int32Type>(array), i64::from),
        DataType::Date32 => chunk(descr, values::<Date32Type>(array), i64::from),
        DataType::UInt64 => chunk(descr, values::<UInt64Type>(array), |v| v as i64),
        DataType::Int64 => chunk(descr, values::<Int64Type>(array), |v| v),
        // Precision 18 at most: every value fits in 64 bits, arrow-rs's INT64 column.
        DataType::Decimal128(p, _) if *p <= 18 => {
            chunk(descr, values::<Decimal128Type>(array), |v| v as i64)
        }
        t => Err(ParquetError::General(format!(
            "{}: {t} is not a delta-encoded column",
            descr.name()
        ))),
    }
}

fn values<T: ArrowPrimitiveType>(array: &dyn Array) -> &[T::Native] {
    array.as_primitive::<T>().values()
}

/// The physical type's arithmetic: deltas wrap at its width, as readers undo them.
#[derive(Clone, Copy)]
struct Width {
    int32: bool,
    unsigned: bool,
}

impl Width {
    /// `b - a` at the physical width, sign-extended.
    #[inline]
    fn delta(self, a: i64, b: i64) -> i64 {
        if self.int32 {
            i64::from((b as i32).wrapping_sub(a as i32))
        } else {
            b.wrapping_sub(a)
        }
    }

    /// Whether `a` sorts before `b` in the column's order.
    #[inline]
    fn less(self, a: i64, b: i64) -> bool {
        match (self.unsigned, self.int32) {
            (false, _) => a < b,
            (true, true) => (a as u32) < (b as u32),
            (true, false) => (a as u64) < (b as u64),
        }
    }

    /// `(least, greatest)` widened to take in `v`.
    #[inline]
    fn wider(self, (lo, hi): (i64, i64), v: i64) -> (i64, i64) {
        (
            if self.less(v, lo) { v } else { lo },
            if self.less(hi, v) { v } else { hi },
        )
    }

    /// The value's little-endian bytes at the physical width.
    fn bytes(self, v: i64) -> Vec<u8> {
        if self.int32 {
            (v as i32).to_le_bytes().to_vec()
        } else {
            v.to_le_bytes().to_vec()
        }
    }
}

fn chunk<N: Copy>(
    descr: ColumnDescPtr,
    values: &[N],
    physical: impl Fn(N) -> i64,
) -> Result<SplicedChunk> {
    if values.is_empty() {
        return Err(ParquetError::General(format!(
            "{}: an empty column chunk",
            descr.name()
        )));
    }
    let width = Width {
        int32: match descr.physical_type() {
            Type::INT32 => true,
            Type::INT64 => false,
            t => {
                return Err(ParquetError::General(format!(
                    "{}: physical type {t} is not an integer",
                    descr.name()
                )));
            }
        },
        unsigned: descr.sort_order() == SortOrder::UNSIGNED,
    };
    let mut sink = TrackedWrite::new(Vec::new());
    let mut pages = SerializedPageWriter::new(&mut sink);
    let mut offsets = OffsetIndexBuilder::new();
    let mut index = ColumnIndexBuilder::new(descr.physical_type());
    let mut page_values = Vec::with_capacity(PAGE_ROWS);
    let mut chunk_range: Option<(i64, i64)> = None;
    let (mut ascending, mut descending) = (true, true);
    let mut last_range: Option<(i64, i64)> = None;
    let mut data_page_offset = None;
    let mut data_pages = 0;
    for page in values.chunks(PAGE_ROWS) {
        // The page's values at the physical width, its least and greatest kept as they pass.
        page_values.clear();
        let first = physical(page[0]);
        let mut range = (first, first);
        for &v in page {
            let v = physical(v);
            range = width.wider(range, v);
            page_values.push(v);
        }
        let (min, max) = range;
        let buf = encode_page(width, &page_values);
        let size = buf.len();
        let spec = pages.write_page(CompressedPage::new(
            Page::DataPage {
                buf: Bytes::from(buf),
                num_values: page.len() as u32,
                encoding: Encoding::DELTA_BINARY_PACKED,
                def_level_encoding: Encoding::RLE,
                rep_level_encoding: Encoding::RLE,
                statistics: None,
            },
            size,
        ))?;
        data_page_offset.get_or_insert(spec.offset as i64);
        data_pages += 1;
        offsets.append_row_count(page.len() as i64);
        offsets.append_offset_and_size(spec.offset as i64, spec.compressed_size as i32);
        index.append(false, width.bytes(min), width.bytes(max), 0);
        if let Some((lo, hi)) = last_range {
            ascending &= !width.less(min, lo) && !width.less(max, hi);
            descending &= !width.less(lo, min) && !width.less(hi, max);
        }
        last_range = Some((min, max));
        chunk_range = Some(chunk_range.map_or(range, |r| width.wider(width.wider(r, min), max)));
    }
    index.set_boundary_order(match (ascending, descending) {
        (true, _) => BoundaryOrder::ASCENDING,
        (false, true) => BoundaryOrder::DESCENDING,
        (false, false) => BoundaryOrder::UNORDERED,
    });
    pages.close()?;
    let data = Bytes::from(sink.into_inner()?);
    let (min, max) = chunk_range.unwrap_or_default();
    // Signed columns also fill the format's old `min`/`max` fields, for older readers, as
    // arrow-rs's column writer does.
    let old_fields = !width.unsigned;
    let statistics = if width.int32 {
        ValueStatistics::new(Some(min as i32), Some(max as i32), None, Some(0), false)
            .with_backwards_compatible_min_max(old_fields)
            .into()
    } else {
        ValueStatistics::new(Some(min), Some(max), None, Some(0), false)
            .with_backwards_compatible_min_max(old_fields)
            .into()
    };
    let size = data.len() as i64;
    let metadata = ColumnChunkMetaData::builder(descr)
        .set_compression(Compression::UNCOMPRESSED)
        .set_encodings_mask(EncodingMask::new_from_encodings(
            [Encoding::RLE, Encoding::DELTA_BINARY_PACKED].iter(),
        ))
        .set_page_encoding_stats(vec![PageEncodingStats {
            page_type: PageType::DATA_PAGE,
            encoding: Encoding::DELTA_BINARY_PACKED,
            count: data_pages,
        }])
        .set_total_compressed_size(size)
        .set_total_uncompressed_size(size)
        .set_num_values(values.len() as i64)
        .set_data_page_offset(data_page_offset.unwrap_or_default())
        .set_statistics(statistics)
        .build()?;
    SplicedChunk::new(data, values.len(), metadata, index, offsets)
}

/// One page of `values` (at least one) as `DELTA_BINARY_PACKED`: the header (block size,
/// miniblocks per block, value count, first value), then blocks of 128 deltas, each its
/// least delta, four bit widths and the miniblocks of deltas less that least, bit-packed.
/// In the last block, miniblocks past the values have width 0 and no bytes; the last one
/// with values is padded with zeros.
fn encode_page(width: Width, values: &[i64]) -> Vec<u8> {
    let mut out = Vec::with_capacity(16 + values.len() * if width.int32 { 4 } else { 8 });
    varint(BLOCK as u64, &mut out);
    varint(MINIBLOCKS as u64, &mut out);
    varint(values.len() as u64, &mut out);
    varint(zigzag(values[0]), &mut out);
    let mut deltas = [0i64; BLOCK];
    let mut packed = [0u64; BLOCK];
    let mut prev = values[0];
    for block in values[1..].chunks(BLOCK) {
        for (d, &v) in deltas.iter_mut().zip(block) {
            *d = width.delta(prev, v);
            prev = v;
        }
        let deltas = &deltas[..block.len()];
        let min = deltas.iter().copied().min().unwrap_or(0);
        // Every delta is within the physical width, so the difference fits its unsigned kin.
        for (p, &d) in packed.iter_mut().zip(deltas) {
            *p = d.wrapping_sub(min) as u64;
        }
        packed[block.len()..].fill(0);
        varint(zigzag(min), &mut out);
        let used = block.len().div_ceil(MINIBLOCK);
        let mut widths = [0u8; MINIBLOCKS];
        for (w, mini) in widths.iter_mut().zip(packed.chunks(MINIBLOCK)).take(used) {
            let all = mini.iter().fold(0, |a, &p| a | p);
            *w = (u64::BITS - all.leading_zeros()) as u8;
        }
        out.extend_from_slice(&widths);
        for (&w, mini) in widths.iter().zip(packed.chunks(MINIBLOCK)).take(used) {
            pack(mini, u32::from(w), &mut out);
        }
    }
    out
}

/// Appends 32 values of `width` bits each, least significant bit first: `4 * width` bytes.
#[inline]
fn pack(values: &[u64], width: u32, out: &mut Vec<u8>) {
    if width == 0 {
        return;
    }
    let mut acc = 0u128;
    let mut bits = 0;
    for &v in values {
        acc |= u128::from(v) << bits;
        bits += width;
        if bits >= 64 {
            out.extend_from_slice(&(acc as u64).to_le_bytes());
            acc >>= 64;
            bits -= 64;
        }
    }
    // 32 values make a whole number of bytes; whole words are out already.
    out.extend_from_slice(&acc.to_le_bytes()[..(bits / 8) as usize]);
}

/// ZigZag: small magnitudes, either sign, to small unsigned numbers.
#[inline]
fn zigzag(v: i64) -> u64 {
    ((v << 1) ^ (v >> 63)) as u64
}

#[cfg(test)]
mod tests {
    use super::*;
    use arrow_array::{
        ArrayRef, Date32Array, Decimal128Array, Int32Array, Int64Array, RecordBatch, UInt16Array,
        UInt32Array, UInt64Array,
    };
    use arrow_schema::Schema;
    use parquet::arrow::ArrowWriter;
    use parquet::arrow::arrow_reader::{ArrowReaderOptions, ParquetRecordBatchReaderBuilder};
    use parquet::file::metadata::{PageIndexPolicy, ParquetMetaData};
    use parquet::file::properties::WriterProperties;
    use parquet::schema::types::ColumnPath;
    use std::sync::Arc;

    #[test]
    fn miniblocks_pack_least_significant_bit_first() {
        let values: Vec<u64> = (0..32).map(|i| i % 8).collect();
        let mut out = Vec::new();
        pack(&values, 3, &mut out);
        assert_eq!(out.len(), 12, "32 values of 3 bits");
        // 0 1 2 3 4 5 6 7 in three bits each, from the lowest bit: 111 110 101 100 011 010
        // 001 000 read from the top, cut into bytes.
        assert_eq!(&out[..3], &[0b1000_1000, 0b1100_0110, 0b1111_1010]);
        out.clear();
        pack(&[u64::MAX; 32], 64, &mut out);
        assert_eq!(out, vec![0xff; 256]);
        out.clear();
        pack(&[0; 32], 0, &mut out);
        assert!(out.is_empty(), "width 0 takes no bytes");
    }

    #[test]
    fn a_page_header_names_block_miniblocks_count_and_first_value() {
        let width = Width {
            int32: false,
            unsigned: false,
        };
        // One value: the header alone (128, 4, 1, zigzag(-3) = 5).
        assert_eq!(encode_page(width, &[-3]), [0x80, 0x01, 4, 1, 5]);
        // Three equal steps of 7: min delta 7, every delta less it 0, so widths 0, no bodies.
        assert_eq!(
            encode_page(width, &[1, 8, 15, 22]),
            [0x80, 0x01, 4, 4, 2, 14, 0, 0, 0, 0]
        );
    }

    /// Columns of every supported type, with extremes whose deltas wrap at the column's
    /// width, steady runs and noise.
    fn columns(n: usize) -> Vec<(Field, ArrayRef)> {
        let mut x = 0x2545_f491_4f6c_dd1du64;
        let mut next = move || {
            x ^= x << 13;
            x ^= x >> 7;
            x ^= x << 17;
            x
        };
        let mut noise: Vec<u64> = (0..n).map(|_| next()).collect();
        for (i, v) in noise.iter_mut().enumerate() {
            match i % 7 {
                0 => *v = 0,
                1 => *v = u64::MAX,
                2 | 3 => *v = i as u64,
                _ => {}
            }
        }
        let field = |name: &str, t: DataType| Field::new(name, t, false);
        vec![
            (
                field("u64", DataType::UInt64),
                Arc::new(UInt64Array::from(noise.clone())),
            ),
            (
                field("ids", DataType::UInt64),
                Arc::new(UInt64Array::from_iter_values(
                    (0..n as u64).map(|i| 90_000_000_000 + 3 * i),
                )),
            ),
            (
                field("u32", DataType::UInt32),
                Arc::new(UInt32Array::from_iter_values(
                    noise.iter().map(|&v| v as u32),
                )),
            ),
            (
                field("u16", DataType::UInt16),
                Arc::new(UInt16Array::from_iter_values(
                    noise.iter().map(|&v| v as u16),
                )),
            ),
            (
                field("i32", DataType::Int32),
                Arc::new(Int32Array::from_iter_values(
                    noise.iter().map(|&v| v as i32),
                )),
            ),
            (
                field("i64", DataType::Int64),
                Arc::new(Int64Array::from_iter_values(
                    noise.iter().map(|&v| v as i64),
                )),
            ),
            (
                field("date", DataType::Date32),
                Arc::new(Date32Array::from_iter_values(
                    noise.iter().map(|&v| (v % 40_000) as i32 - 20_000),
                )),
            ),
            (
                field("money", DataType::Decimal128(18, 2)),
                Arc::new(
                    Decimal128Array::from_iter_values(noise.iter().map(|&v| {
                        (v % 1_999_999_999_999_999_999) as i128 - 999_999_999_999_999_999
                    }))
                    .with_precision_and_scale(18, 2)
                    .unwrap(),
                ),
            ),
        ]
    }

    fn read(file: Bytes) -> (Vec<RecordBatch>, ParquetMetaData) {
        let options = ArrowReaderOptions::new().with_page_index_policy(PageIndexPolicy::Required);
        let reader = ParquetRecordBatchReaderBuilder::try_new_with_options(file, options).unwrap();
        let metadata = reader.metadata().as_ref().clone();
        (
            reader.build().unwrap().map(Result::unwrap).collect(),
            metadata,
        )
    }

    /// The columns written through [`encode`], and through arrow-rs's own delta writer with
    /// the same page size, read back by arrow-rs's reader: the same values, statistics and
    /// column indexes.
    fn check(n: usize) {
        let (fields, arrays): (Vec<Field>, Vec<ArrayRef>) = columns(n).into_iter().unzip();
        let schema = Arc::new(Schema::new(fields.clone()));
        let props = fields
            .iter()
            .fold(WriterProperties::builder(), |b, f| {
                let path = ColumnPath::from(f.name().as_str());
                b.set_column_encoding(path.clone(), Encoding::DELTA_BINARY_PACKED)
                    .set_column_dictionary_enabled(path.clone(), false)
                    .set_column_compression(path, Compression::UNCOMPRESSED)
            })
            .set_data_page_row_count_limit(PAGE_ROWS)
            .build();
        assert!(fields.iter().all(|f| {
            let path = ColumnPath::from(f.name().as_str());
            is_delta(f, props.encoding(&path))
        }));

        let mut reference =
            ArrowWriter::try_new(Vec::new(), schema.clone(), Some(props.clone())).unwrap();
        reference
            .write(&RecordBatch::try_new(schema.clone(), arrays.clone()).unwrap())
            .unwrap();
        let reference = Bytes::from(reference.into_inner().unwrap());

        let (mut writer, _) = ArrowWriter::try_new(Vec::new(), schema.clone(), Some(props))
            .and_then(ArrowWriter::into_serialized_writer)
            .unwrap();
        let descrs = writer.schema_descr().columns().to_vec();
        let mut group = writer.next_row_group().unwrap();
        for (descr, array) in descrs.into_iter().zip(&arrays) {
            encode(descr, array)
                .unwrap()
                .append_to_row_group(&mut group)
                .unwrap();
        }
        group.close().unwrap();
        let ours = Bytes::from(writer.into_inner().unwrap());

        let (expected, expected_meta) = read(reference);
        let (got, meta) = read(ours);
        // The same reader, so the same batches.
        assert_eq!(got, expected, "{n} rows read back");
        for c in 0..fields.len() {
            let (ours, theirs) = (
                meta.row_group(0).column(c),
                expected_meta.row_group(0).column(c),
            );
            assert_eq!(
                ours.statistics(),
                theirs.statistics(),
                "{n} rows, column {c}"
            );
            let index = |m: &ParquetMetaData| m.column_index().unwrap()[0][c].clone();
            assert_eq!(index(&meta), index(&expected_meta), "{n} rows, column {c}");
            let pages =
                |m: &ParquetMetaData| m.offset_index().unwrap()[0][c].page_locations().len();
            assert_eq!(pages(&meta), n.div_ceil(PAGE_ROWS));
            assert_eq!(pages(&meta), pages(&expected_meta));
        }
    }

    #[test]
    fn columns_read_back_as_arrow_rs_writes_them() {
        // One value (no blocks), a partial miniblock, a block and one more, two pages and a
        // partial third.
        for n in [1, 2, 33, 129, 2 * PAGE_ROWS + 77] {
            check(n);
        }
    }

    #[test]
    fn other_columns_are_not_taken() {
        let delta = Some(Encoding::DELTA_BINARY_PACKED);
        assert!(
            !is_delta(&Field::new("x", DataType::UInt32, true), delta),
            "nullable"
        );
        assert!(!is_delta(&Field::new("x", DataType::UInt32, false), None));
        assert!(!is_delta(&Field::new("x", DataType::Float64, false), delta));
        assert!(!is_delta(
            &Field::new("x", DataType::Decimal128(20, 2), false),
            delta
        ));
    }
}
