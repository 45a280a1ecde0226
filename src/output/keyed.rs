//! Dictionary-encoded Parquet string columns written straight from their keys.
//!
//! Bazaar's string columns (persona, category, event lists, churn causes) are Arrow
//! dictionary arrays: a short list of names and a small integer key a row. arrow-rs 60
//! writes such an array by hashing every row's string again to rebuild the dictionary the
//! array already has (an open upstream change would keep the keys); for the line items'
//! category, a few hundred million rows in a 10M-customer run, that cost a tenth of the run's
//! CPU, and writing the strings plain under zstd instead cost nearly as much.
//!
//! Here the array's own values become the column chunk's dictionary page and its keys,
//! bit-packed, the data pages: the format's `RLE_DICTIONARY` encoding, as any Parquet writer
//! produces it, with chunk statistics, a column index and an offset index like arrow-rs's
//! other columns. The chunk is spliced into the row group with
//! [`SerializedRowGroupWriter::append_column`], the public API for pre-encoded columns.
//!
//! [`SerializedRowGroupWriter::append_column`]: parquet::file::writer::SerializedRowGroupWriter::append_column

use arrow_array::cast::AsArray;
use arrow_array::types::{UInt8Type, UInt16Type};
use arrow_array::{Array, StringArray};
use arrow_schema::{DataType, Field};
use bytes::Bytes;
use parquet::basic::{Compression, Encoding, EncodingMask, PageType, Type};
use parquet::column::page::{CompressedPage, Page, PageWriter};
use parquet::column::writer::ColumnCloseResult;
use parquet::data_type::ByteArray;
use parquet::errors::{ParquetError, Result};
use parquet::file::metadata::{
    ColumnChunkMetaData, ColumnIndexBuilder, OffsetIndexBuilder, PageEncodingStats,
};
use parquet::file::statistics::Statistics;
use parquet::file::writer::{SerializedPageWriter, SerializedRowGroupWriter, TrackedWrite};
use parquet::schema::types::ColumnDescPtr;

/// Rows per data page: arrow-rs's default page row limit, rounded to whole groups of eight
/// keys, so a page's bit-packed runs never end part-way through a group but at its end.
const PAGE_ROWS: usize = 20_480;
/// Groups of eight keys per bit-packed run: the most a one-byte run header can count.
const RUN_GROUPS: usize = 63;
/// Repeats of one key, from the start of a group, written as a run-length run: eight cost a
/// byte or two that way against `width` bytes bit-packed.
const REPEAT: usize = 8;

/// Whether `field` is written by [`encode`]: a string dictionary with 8- or 16-bit keys and
/// no nulls.
pub fn is_keyed(field: &Field) -> bool {
    !field.is_nullable()
        && matches!(field.data_type(), DataType::Dictionary(k, v)
            if matches!(**k, DataType::UInt8 | DataType::UInt16) && **v == DataType::Utf8)
}

/// One column chunk encoded by Bazaar (here or in [`super::delta`]), ready to splice into
/// its row group.
pub struct SplicedChunk {
    /// The chunk's pages, headers included.
    pub data: Bytes,
    /// Its metadata and page indexes, as a column writer would close it.
    pub close: ColumnCloseResult,
}

impl SplicedChunk {
    /// The chunk of `rows` rows whose pages, uncompressed, are `data`.
    pub fn new(
        data: Bytes,
        rows: usize,
        metadata: ColumnChunkMetaData,
        index: ColumnIndexBuilder,
        offsets: OffsetIndexBuilder,
    ) -> Result<Self> {
        Ok(Self {
            close: ColumnCloseResult {
                bytes_written: data.len() as u64,
                rows_written: rows as u64,
                metadata,
                bloom_filter: None,
                column_index: Some(index.build()?),
                offset_index: Some(offsets.build()),
            },
            data,
        })
    }

    /// Appends the chunk as the row group's next column.
    pub fn append_to_row_group<W: std::io::Write + Send>(
        self,
        group: &mut SerializedRowGroupWriter<'_, W>,
    ) -> Result<()> {
        group.append_column(&self.data, self.close)
    }
}

/// Refuses an array with nulls for a column declared without them (`descr`).
pub fn no_nulls(descr: &ColumnDescPtr, array: &dyn Array) -> Result<()> {
    if array.null_count() > 0 {
        return Err(ParquetError::General(format!(
            "{}: nulls in a column declared without them",
            descr.name()
        )));
    }
    Ok(())
}

/// Encodes `array`, a string dictionary array without nulls (see [`is_keyed`]), as the
/// column chunk of `descr`.
pub fn encode(descr: ColumnDescPtr, array: &dyn Array) -> Result<SplicedChunk> {
    no_nulls(&descr, array)?;
    match array.data_type() {
        DataType::Dictionary(k, _) if **k == DataType::UInt8 => {
            let a = array.as_dictionary::<UInt8Type>();
            encode_keys(descr, a.values().as_string(), a.keys().values())
        }
        DataType::Dictionary(k, _) if **k == DataType::UInt16 => {
            let a = array.as_dictionary::<UInt16Type>();
            encode_keys(descr, a.values().as_string(), a.keys().values())
        }
        t => Err(ParquetError::General(format!(
            "{}: {t} is not a keyed column",
            descr.name()
        ))),
    }
}

fn encode_keys<K: Copy + Into<u32>>(
    descr: ColumnDescPtr,
    values: &StringArray,
    keys: &[K],
) -> Result<SplicedChunk> {
    // Every key names a value: Arrow checked it when the dictionary array was built.
    let width = bit_width(values.len());
    let mut sink = TrackedWrite::new(Vec::new());
    let mut pages = SerializedPageWriter::new(&mut sink);

    let mut plain = Vec::with_capacity(values.value_data().len() + 4 * values.len());
    for v in values.iter().flatten() {
        plain.extend_from_slice(&(v.len() as u32).to_le_bytes());
        plain.extend_from_slice(v.as_bytes());
    }
    let dictionary = write(
        &mut pages,
        Page::DictionaryPage {
            buf: Bytes::from(plain),
            num_values: values.len() as u32,
            encoding: Encoding::PLAIN,
            is_sorted: false,
        },
    )?;

    let mut offsets = OffsetIndexBuilder::new();
    let mut index = ColumnIndexBuilder::new(Type::BYTE_ARRAY);
    // The values the page's keys name, and the chunk's: their least and greatest are the
    // page index's and the chunk statistics' min and max.
    let mut used = vec![false; values.len()];
    let mut chunk_used = vec![false; values.len()];
    let mut data_page_offset = None;
    let mut data_pages = 0;
    for page_keys in keys.chunks(PAGE_ROWS) {
        used.fill(false);
        // At most `width` bytes and a run header, or a run of five bytes, per eight keys.
        let mut buf = Vec::with_capacity(1 + page_keys.len().div_ceil(8) * (width as usize + 5));
        buf.push(width as u8);
        pack(page_keys, width, &mut used, &mut buf);
        let spec = write(
            &mut pages,
            Page::DataPage {
                buf: Bytes::from(buf),
                num_values: page_keys.len() as u32,
                encoding: Encoding::RLE_DICTIONARY,
                def_level_encoding: Encoding::RLE,
                rep_level_encoding: Encoding::RLE,
                statistics: None,
            },
        )?;
        data_page_offset.get_or_insert(spec.0);
        data_pages += 1;
        offsets.append_row_count(page_keys.len() as i64);
        offsets.append_offset_and_size(spec.0, spec.1);
        let (min, max) = min_max(values, &used);
        index.append(false, min.to_vec(), max.to_vec(), 0);
        for (c, u) in chunk_used.iter_mut().zip(&used) {
            *c |= u;
        }
    }
    pages.close()?;
    let data = Bytes::from(sink.into_inner()?);

    let (min, max) = min_max(values, &chunk_used);
    let statistics = Statistics::new(
        Some(ByteArray::from(min.to_vec())),
        Some(ByteArray::from(max.to_vec())),
        None,
        Some(0),
        false,
    );
    let size = data.len() as i64;
    let metadata = ColumnChunkMetaData::builder(descr)
        .set_compression(Compression::UNCOMPRESSED)
        .set_encodings_mask(EncodingMask::new_from_encodings(
            [Encoding::PLAIN, Encoding::RLE, Encoding::RLE_DICTIONARY].iter(),
        ))
        .set_page_encoding_stats(vec![
            PageEncodingStats {
                page_type: PageType::DICTIONARY_PAGE,
                encoding: Encoding::PLAIN,
                count: 1,
            },
            PageEncodingStats {
                page_type: PageType::DATA_PAGE,
                encoding: Encoding::RLE_DICTIONARY,
                count: data_pages,
            },
        ])
        .set_total_compressed_size(size)
        .set_total_uncompressed_size(size)
        .set_num_values(keys.len() as i64)
        .set_dictionary_page_offset(Some(dictionary.0))
        .set_data_page_offset(data_page_offset.unwrap_or(dictionary.0))
        .set_statistics(statistics)
        .build()?;
    SplicedChunk::new(data, keys.len(), metadata, index, offsets)
}

/// Writes an uncompressed page; returns its offset and its size with its header.
fn write(pages: &mut SerializedPageWriter<'_, Vec<u8>>, page: Page) -> Result<(i64, i32)> {
    let size = page.buffer().len();
    let spec = pages.write_page(CompressedPage::new(page, size))?;
    Ok((spec.offset as i64, spec.compressed_size as i32))
}

/// Bits a key needs to tell `values` values apart (at least one).
fn bit_width(values: usize) -> u32 {
    (usize::BITS - values.saturating_sub(1).leading_zeros()).max(1)
}

/// Appends `keys` in the format's hybrid of runs: a value repeated for at least
/// [`REPEAT`] keys from the start of a group as one run-length run (a persona, an hour's
/// events), the rest bit-packed (groups of eight keys of `width` bits each, under a one-byte
/// header, the page's last group padded with zeros). Marks each key in `used`.
fn pack<K: Copy + Into<u32>>(keys: &[K], width: u32, used: &mut [bool], out: &mut Vec<u8>) {
    let bytes = width as usize;
    let value_bytes = bytes.div_ceil(8);
    // Where the open bit-packed run's header is, and how many groups it has.
    let mut packed: Option<(usize, usize)> = None;
    let mut at = 0;
    while at < keys.len() {
        let first: u32 = keys[at].into();
        let same = keys[at..]
            .iter()
            .take_while(|&&k| Into::<u32>::into(k) == first)
            .count();
        if same >= REPEAT {
            used[first as usize] = true;
            packed = None;
            varint((same as u64) << 1, out);
            out.extend_from_slice(&first.to_le_bytes()[..value_bytes]);
            at += same;
            continue;
        }
        let (header, groups) = match packed {
            Some((header, groups)) if groups < RUN_GROUPS => (header, groups + 1),
            _ => {
                out.push(0);
                (out.len() - 1, 1)
            }
        };
        out[header] = ((groups << 1) | 1) as u8;
        packed = Some((header, groups));
        let group = &keys[at..(at + 8).min(keys.len())];
        let mut bits = 0u128;
        for (i, &k) in group.iter().enumerate() {
            let k: u32 = k.into();
            used[k as usize] = true;
            bits |= u128::from(k) << (i as u32 * width);
        }
        out.extend_from_slice(&bits.to_le_bytes()[..bytes]);
        at += group.len();
    }
}

/// Appends `v` as an unsigned LEB128 varint (run headers; delta headers).
pub fn varint(mut v: u64, out: &mut Vec<u8>) {
    while v >= 0x80 {
        out.push((v as u8) | 0x80);
        v >>= 7;
    }
    out.push(v as u8);
}

/// The least and greatest of the values marked in `used`, in the format's byte order.
fn min_max<'a>(values: &'a StringArray, used: &[bool]) -> (&'a [u8], &'a [u8]) {
    let mut marked = used
        .iter()
        .enumerate()
        .filter(|(_, u)| **u)
        .map(|(i, _)| values.value(i).as_bytes());
    let first = marked.next().unwrap_or_default();
    marked.fold((first, first), |(lo, hi), v| (lo.min(v), hi.max(v)))
}

#[cfg(test)]
mod tests {
    use super::*;
    use parquet::file::metadata::ParquetMetaData;

    #[test]
    fn widths_fit_the_largest_key() {
        assert_eq!(bit_width(0), 1);
        assert_eq!(bit_width(1), 1);
        assert_eq!(bit_width(2), 1);
        assert_eq!(bit_width(3), 2);
        assert_eq!(bit_width(16), 4);
        assert_eq!(bit_width(17), 5);
        assert_eq!(bit_width(65_536), 16);
    }

    #[test]
    fn keys_pack_least_significant_bit_first_in_runs_of_63_groups() {
        let keys: Vec<u16> = (0..1_000).map(|i| i % 5).collect();
        let mut used = vec![false; 5];
        let mut out = Vec::new();
        pack(&keys, 3, &mut used, &mut out);
        // 1,000 keys: a run of 63 groups (504 keys), then 62 groups (496 keys).
        assert_eq!(out.len(), 1 + 63 * 3 + 1 + 62 * 3);
        assert_eq!(out[0], (63 << 1) | 1);
        assert_eq!(out[1 + 63 * 3], (62 << 1) | 1);
        // The first group, keys 0 1 2 3 4 0 1 2 in three bits each.
        let first = u32::from_le_bytes([out[1], out[2], out[3], 0]);
        let unpacked: Vec<u32> = (0..8).map(|i| (first >> (3 * i)) & 7).collect();
        assert_eq!(unpacked, [0, 1, 2, 3, 4, 0, 1, 2]);
        assert!(used.iter().all(|u| *u));
    }

    #[test]
    fn repeats_of_eight_or_more_become_run_length_runs() {
        // 3 keys, then 200 sevens (a two-byte run header), then 5 keys, then 8 twos.
        let mut keys: Vec<u16> = vec![1, 2, 3];
        keys.extend([7; 200]);
        keys.extend([1, 2, 3, 4, 5]);
        keys.extend([2; 8]);
        let mut used = vec![false; 9];
        let mut out = Vec::new();
        pack(&keys, 4, &mut used, &mut out);
        // A bit-packed group holds 1 2 3 and five of the sevens; the 195 sevens left are a
        // run; then a group of 1 2 3 4 5 2 2 2, and the last five twos are one more group
        // (fewer than eight, so bit-packed and padded).
        let expected = [
            vec![0b11, 0x21, 0x73, 0x77, 0x77],
            vec![(195 << 1) as u8 | 0x80, 195 >> 6, 7],
            vec![0b101, 0x21, 0x43, 0x25, 0x22, 0x22, 0x22, 0x02, 0],
        ]
        .concat();
        assert_eq!(out, expected);
        let marked: Vec<usize> = (0..9).filter(|&k| used[k]).collect();
        assert_eq!(marked, [1, 2, 3, 4, 5, 7]);
    }

    /// Writes a column of `keys` into `values` as one row group through the keyed path and
    /// reads it back with arrow-rs's reader.
    fn round_trip(keys: &[u16], values: &[&str]) -> (Vec<String>, ParquetMetaData) {
        use arrow_array::{ArrayRef, DictionaryArray, RecordBatch, UInt16Array};
        use arrow_schema::{Field, Schema};
        use parquet::arrow::ArrowWriter;
        use parquet::arrow::arrow_reader::{ArrowReaderOptions, ParquetRecordBatchReaderBuilder};
        use parquet::file::metadata::PageIndexPolicy;
        use std::sync::Arc;

        let field = Field::new(
            "name",
            DataType::Dictionary(Box::new(DataType::UInt16), Box::new(DataType::Utf8)),
            false,
        );
        assert!(is_keyed(&field));
        let schema = Arc::new(Schema::new(vec![field]));
        let array: ArrayRef = Arc::new(DictionaryArray::new(
            UInt16Array::from(keys.to_vec()),
            Arc::new(StringArray::from(values.to_vec())),
        ));
        let (mut writer, _) = ArrowWriter::try_new(Vec::new(), schema.clone(), None)
            .and_then(ArrowWriter::into_serialized_writer)
            .unwrap();
        let descr = writer.schema_descr().column(0);
        let mut group = writer.next_row_group().unwrap();
        encode(descr, &array)
            .unwrap()
            .append_to_row_group(&mut group)
            .unwrap();
        group.close().unwrap();
        let file = Bytes::from(writer.into_inner().unwrap());

        let options = ArrowReaderOptions::new().with_page_index_policy(PageIndexPolicy::Required);
        let reader = ParquetRecordBatchReaderBuilder::try_new_with_options(file, options).unwrap();
        let metadata = reader.metadata().as_ref().clone();
        let batches: Vec<RecordBatch> = reader.build().unwrap().map(Result::unwrap).collect();
        let mut read = Vec::new();
        for b in &batches {
            let names = b.column(0).as_dictionary::<UInt16Type>();
            let values = names.values().as_string::<i32>();
            read.extend(
                names
                    .keys()
                    .values()
                    .iter()
                    .map(|&k| values.value(k.into()).to_owned()),
            );
        }
        (read, metadata)
    }

    #[test]
    fn keyed_columns_read_back_as_written() {
        let values = [
            "apparel",
            "books",
            "electronics",
            "groceries",
            "home",
            "beauty",
            "sports",
            "toys",
            "wine_beverages",
        ];
        // Three pages and a bit: noise, runs of every length around the run threshold,
        // starting anywhere in a group, a long run across a page boundary.
        let mut keys = Vec::new();
        let mut x = 12_345u32;
        while keys.len() < 3 * PAGE_ROWS + 1_003 {
            x = x.wrapping_mul(1_103_515_245).wrapping_add(12_345);
            let key = ((x >> 16) % 9) as u16;
            let repeat = match (x >> 8) % 4 {
                0 => 1 + (x >> 20) as usize % 20,
                1 if keys.len() > PAGE_ROWS - 50 && keys.len() < PAGE_ROWS => 300,
                _ => 1,
            };
            keys.extend(std::iter::repeat_n(key, repeat));
        }
        let (read, metadata) = round_trip(&keys, &values);
        let expected: Vec<&str> = keys.iter().map(|&k| values[usize::from(k)]).collect();
        assert_eq!(read, expected);

        let chunk = metadata.row_group(0).column(0);
        let stats = chunk.statistics().unwrap();
        assert_eq!(stats.min_bytes_opt(), Some(&b"apparel"[..]));
        assert_eq!(stats.max_bytes_opt(), Some(&b"wine_beverages"[..]));
        let pages = metadata.offset_index().unwrap()[0][0].page_locations();
        assert_eq!(pages.len(), 4);
        assert_eq!(pages[1].first_row_index, PAGE_ROWS as i64);
        assert!(metadata.column_index().is_some_and(|i| i[0].len() == 1));
    }

    #[test]
    fn keys_wider_than_a_byte_read_back() {
        let names: Vec<String> = (0..300).map(|i| format!("events {i}")).collect();
        let values: Vec<&str> = names.iter().map(String::as_str).collect();
        let keys: Vec<u16> = (0..5_000u32)
            .map(|i| ((i * 7 + i / 13) % 300) as u16)
            .collect();
        let (read, metadata) = round_trip(&keys, &values);
        let expected: Vec<&str> = keys.iter().map(|&k| values[usize::from(k)]).collect();
        assert_eq!(read, expected);
        let stats = metadata.row_group(0).column(0).statistics().unwrap();
        assert_eq!(stats.min_bytes_opt(), Some(&b"events 0"[..]));
        assert_eq!(stats.max_bytes_opt(), Some(&b"events 99"[..]));
    }

    #[test]
    fn a_single_name_and_an_unused_name_read_back() {
        let keys = vec![0u16; 1_001];
        let (read, metadata) = round_trip(&keys, &["premium", "budget"]);
        assert!(read.iter().all(|v| v == "premium") && read.len() == 1_001);
        // "budget" is in the dictionary but on no row: the statistics leave it out.
        let stats = metadata.row_group(0).column(0).statistics().unwrap();
        assert_eq!(stats.min_bytes_opt(), Some(&b"premium"[..]));
        assert_eq!(stats.max_bytes_opt(), Some(&b"premium"[..]));
    }

    #[test]
    fn min_and_max_come_from_the_used_values_only() {
        let values = StringArray::from(vec!["Toys", "Books", "Zebra", "Apparel"]);
        assert_eq!(
            min_max(&values, &[true, true, false, false]),
            (&b"Books"[..], &b"Toys"[..])
        );
        assert_eq!(
            min_max(&values, &[false, false, true, true]),
            (&b"Apparel"[..], &b"Zebra"[..])
        );
    }
}
