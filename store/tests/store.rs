//! The store's integrity cases, each run against SQLite and PostgreSQL.
#![allow(clippy::unwrap_used)] // tests and benches fail loudly on purpose

mod common;

use common::*;
use mlc_store::ingest::{Format, IngestOptions, Input, ingest};
use mlc_store::{DataType, ResultQuery, StoreError, StoredResult};

const CSV: &str = "\
request_id,ts,age,income,country,approved,seen,note
a1,2026-03-01T00:00:00Z,34,1200.5,DE,true,2026-02-28T00:00:00Z,first
a2,2026-03-01T01:00:00+01:00,,99,US,false,1772323200,
a3,1772330400,41,-3,,1,,x
,2026-03-01T03:00:00Z,50,10,FR,0,,nokey
";

#[tokio::test]
async fn csv_roundtrip_types_nulls_timestamps_and_extras() {
    each_backend(|store, dir| async move {
        let schema = inference();
        let p = write(&dir, "in.csv", CSV);
        let r = ingest_file(&store, &schema, &p).await;
        assert_eq!(
            (r.accepted, r.duplicates, r.quarantined),
            (4, 0, 0),
            "{r:?}"
        );
        assert!(r.complete());

        let cols = [
            "request_id",
            "ts",
            "age",
            "income",
            "country",
            "approved",
            "seen",
        ];
        let b = store
            .scan_batches("inference", &cols, None, i64::MAX)
            .await
            .unwrap();
        assert_eq!(rows(&b), 4);
        // Time order: a2 (offset +01:00) is the same instant as a1.
        assert_eq!(
            ints(&b, 1),
            vec![Some(T0), Some(T0), Some(T0 + 2 * HOUR), Some(T0 + 3 * HOUR)]
        );
        let ids = strs(&b, 0);
        assert!(ids.contains(&None), "a null key is stored: {ids:?}");
        let i = ids.iter().position(|k| k.as_deref() == Some("a2")).unwrap();
        assert_eq!(ints(&b, 2)[i], None, "empty CSV field is null");
        assert_eq!(floats(&b, 3)[i], Some(99.0));
        assert_eq!(bools(&b, 5)[i], Some(false));
        assert_eq!(
            ints(&b, 6)[i],
            Some(T0),
            "epoch seconds in a timestamp field"
        );
        let j = ids.iter().position(|k| k.as_deref() == Some("a3")).unwrap();
        assert_eq!(strs(&b, 4)[j], None);
        assert_eq!(bools(&b, 5)[j], Some(true));

        // Window bounds: start <= time < end.
        let w = store
            .scan_batches("inference", &["request_id"], Some(T0), T0 + 2 * HOUR)
            .await
            .unwrap();
        assert_eq!(rows(&w), 2);

        assert_eq!(
            store.max_time("inference", i64::MAX).await.unwrap(),
            Some(T0 + 3 * HOUR)
        );
        assert_eq!(
            store.max_time("inference", T0 + 3 * HOUR).await.unwrap(),
            Some(T0 + 2 * HOUR)
        );
        assert_eq!(store.max_time("inference", T0).await.unwrap(), None);

        let extras = store.extras("inference", None, i64::MAX).await.unwrap();
        let first = extras
            .iter()
            .find(|e| e.0.as_deref() == Some("a1"))
            .unwrap();
        assert_eq!(first.2.as_deref(), Some(r#"{"note":"first"}"#));
        let second = extras
            .iter()
            .find(|e| e.0.as_deref() == Some("a2"))
            .unwrap();
        assert_eq!(second.2.as_deref(), Some(r#"{"note":null}"#));
    })
    .await;
}

#[tokio::test]
async fn duplicates_within_and_across_files_are_stored_once() {
    each_backend(|store, dir| async move {
        let schema = inference();
        let p = write(
            &dir,
            "a.csv",
            "request_id,ts,age\nx,2026-03-01T00:00:00Z,1\nx,2026-03-01T00:00:00Z,2\ny,2026-03-01T00:00:00Z,3\n,2026-03-01T00:00:00Z,4\n,2026-03-01T00:00:00Z,5\n",
        );
        let r = ingest_file(&store, &schema, &p).await;
        assert_eq!((r.accepted, r.duplicates), (3, 2), "{r:?}");
        // Same key and time in another file and another format; the offset form of the time.
        let q = write(
            &dir,
            "b.jsonl",
            "{\"request_id\":\"x\",\"ts\":\"2026-03-01T01:00:00+01:00\",\"age\":9}\n{\"request_id\":\"z\",\"ts\":1772323200}\n",
        );
        let r = ingest_file(&store, &schema, &q).await;
        assert_eq!((r.accepted, r.duplicates), (1, 1), "{r:?}");
        assert!(r.complete(), "duplicates are stored records: {r:?}");
        assert_eq!(store.count("inference").await.unwrap(), 4);
        // Duplicates take no place: the bound is the count.
        assert_eq!(store.rows_at_most("inference").await.unwrap(), 4);
        // The first stored wins.
        let b = store.scan_batches("inference", &["request_id", "age"], None, i64::MAX).await.unwrap();
        let i = strs(&b, 0).iter().position(|k| k.as_deref() == Some("x")).unwrap();
        assert_eq!(ints(&b, 1)[i], Some(1));
    })
    .await;
}

#[tokio::test]
async fn records_that_do_not_fit_are_quarantined_with_reasons() {
    each_backend(|store, dir| async move {
        let schema = inference();
        let p = write(
            &dir,
            "bad.csv",
            "request_id,ts,age,income\n\
             ok,2026-03-01T00:00:00Z,1,2\n\
             b1,,1,2\n\
             b2,yesterday,1,2\n\
             b3,2026-03-01T00:00:00Z,old,2\n\
             b4,2026-03-01T00:00:00Z,1,NaN\n\
             b5,2026-03-01T00:00:00Z,1\n",
        );
        let r = ingest_file(&store, &schema, &p).await;
        assert_eq!((r.accepted, r.quarantined), (1, 5), "{r:?}");
        assert!(!r.complete());
        assert_eq!(r.reasons.len(), 5);
        assert!(
            r.reasons[0].contains("line 3") && r.reasons[0].contains("missing time `ts`"),
            "{:?}",
            r.reasons
        );
        assert!(
            r.reasons[1].contains("is not a timestamp"),
            "{:?}",
            r.reasons
        );
        assert!(
            r.reasons[2].contains("field `age`: expected int, got \"old\""),
            "{:?}",
            r.reasons
        );
        assert!(r.reasons[3].contains("NaN"), "{:?}", r.reasons);
        assert!(
            r.reasons[4].contains("3 fields but the header has 4"),
            "{:?}",
            r.reasons
        );

        let q = write(
            &dir,
            "bad.jsonl",
            "{\"request_id\":\"j1\",\"ts\":\"2026-03-01T00:00:00Z\",\"age\":true}\n\
             {\"request_id\":\"j2\",\"ts\":\"2026-03-01T00:00:00Z\",\"country\":{\"a\":1}}\n\
             {\"request_id\":{\"x\":1},\"ts\":\"2026-03-01T00:00:00Z\"}\n\
             [1,2]\n\
             {not json\n\
             {\"request_id\":null,\"ts\":\"2026-03-01T05:00:00Z\"}\n",
        );
        let r = ingest_file(&store, &schema, &q).await;
        assert_eq!((r.accepted, r.quarantined), (1, 5), "{r:?}");
        let stored = store.quarantined("inference", 100).await.unwrap();
        assert_eq!(stored.len(), 10);
        assert_eq!(stored[0].raw, "b1,,1,2");
        assert!(
            stored[0].source.ends_with("bad.csv line 3"),
            "{}",
            stored[0].source
        );
        assert!(
            stored[5]
                .reason
                .contains("field `age`: expected int, got true"),
            "{}",
            stored[5].reason
        );
        assert!(
            stored[6]
                .reason
                .contains("field `country`: expected string, got an object")
        );
        assert!(
            stored[7]
                .reason
                .contains("key `request_id`: expected a string")
        );
        assert!(
            stored[8]
                .reason
                .contains("expected a JSON object, got an array")
        );
        assert!(stored[9].reason.contains("not valid JSON"));
        assert_eq!(stored[9].raw, "{not json");
        assert_eq!(store.quarantined("inference", 3).await.unwrap().len(), 3);
        // The same file again (a re-run after a crash): its bad records are reported again
        // but stored once.
        let again = ingest_file(&store, &schema, &q).await;
        assert_eq!((again.accepted, again.quarantined), (0, 5), "{again:?}");
        assert_eq!(store.quarantined("inference", 100).await.unwrap().len(), 10);
    })
    .await;
}

#[tokio::test]
async fn a_declaration_gains_a_field_and_a_type_change_is_refused() {
    each_backend(|store, dir| async move {
        let mut schema = inference();
        let p = write(
            &dir,
            "a.csv",
            "request_id,ts,age,score\nx,2026-03-01T00:00:00Z,1,0.5\n",
        );
        ingest_file(&store, &schema, &p).await;
        schema.fields.push(field("score", DataType::Float));
        store.ensure_component(&schema).await.unwrap();
        assert_eq!(store.component("inference").await.unwrap(), schema);
        let q = write(
            &dir,
            "b.csv",
            "request_id,ts,age,score\ny,2026-03-01T00:00:00Z,2,0.75\n",
        );
        ingest_file(&store, &schema, &q).await;
        let b = store
            .scan_batches("inference", &["request_id", "score"], None, i64::MAX)
            .await
            .unwrap();
        assert_eq!(
            floats(&b, 1),
            vec![None, Some(0.75)],
            "old rows have null in the new column"
        );

        let mut changed = schema.clone();
        changed.fields[0].ty = DataType::Float;
        let err = store.ensure_component(&changed).await.unwrap_err();
        assert!(matches!(err, StoreError::SchemaConflict(_)));
        let msg = err.to_string();
        assert!(
            msg.contains("field `age` is stored as `int` but is now declared `float`"),
            "{msg}"
        );
        assert!(msg.contains("Keep `age: int`"), "{msg}");

        // A field dropped from the declaration and declared again with another type is refused
        // too: its stored column still holds the old values.
        let mut dropped = schema.clone();
        dropped.fields.retain(|f| f.name != "age");
        store.ensure_component(&dropped).await.unwrap();
        dropped.fields.push(field("age", DataType::String));
        assert!(store.ensure_component(&dropped).await.is_err());

        let mut rekeyed = schema.clone();
        rekeyed.key = "id".into();
        let msg = store
            .ensure_component(&rekeyed)
            .await
            .unwrap_err()
            .to_string();
        assert!(
            msg.contains("the key changed from `request_id` to `id`"),
            "{msg}"
        );
        assert_eq!(store.components().await.unwrap().len(), 1);
    })
    .await;
}

#[tokio::test]
async fn jsonl_and_parquet_store_the_same_as_csv() {
    use arrow_array::{
        ArrayRef, BooleanArray, Float64Array, Int64Array, RecordBatch, StringArray,
        TimestampMillisecondArray,
    };
    use std::sync::Arc;
    each_backend(|store, dir| async move {
        let mut schemas = Vec::new();
        for name in ["from_csv", "from_jsonl", "from_parquet"] {
            let mut s = inference();
            s.name = name.into();
            schemas.push(s);
        }
        let csv = write(
            &dir,
            "d.csv",
            "request_id,ts,age,income,country,approved,extra\n\
             a,2026-03-01T00:00:00Z,1,1.5,DE,true,e1\n\
             b,2026-03-01T00:00:01.5Z,,2,,false,\n\
             ,2026-03-01T00:00:02Z,3,,US,,e3\n",
        );
        let jsonl = write(
            &dir,
            "d.jsonl",
            "{\"request_id\":\"a\",\"ts\":\"2026-03-01T00:00:00Z\",\"age\":1,\"income\":1.5,\"country\":\"DE\",\"approved\":true,\"extra\":\"e1\"}\n\
             {\"request_id\":\"b\",\"ts\":1772323201.5,\"age\":null,\"income\":2,\"approved\":false,\"extra\":null}\n\
             {\"ts\":\"2026-03-01T01:00:02+01:00\",\"age\":3,\"country\":\"US\",\"extra\":\"e3\"}\n",
        );
        let cols: Vec<ArrayRef> = vec![
            Arc::new(StringArray::from(vec![Some("a"), Some("b"), None])),
            Arc::new(TimestampMillisecondArray::from(vec![T0 / 1000, T0 / 1000 + 1500, T0 / 1000 + 2000]).with_timezone("UTC")),
            Arc::new(Int64Array::from(vec![Some(1), None, Some(3)])),
            Arc::new(Float64Array::from(vec![Some(1.5), Some(2.0), None])),
            Arc::new(StringArray::from(vec![Some("DE"), None, Some("US")])),
            Arc::new(BooleanArray::from(vec![Some(true), Some(false), None])),
            Arc::new(StringArray::from(vec![Some("e1"), None, Some("e3")])),
        ];
        let batch = RecordBatch::try_from_iter(
            ["request_id", "ts", "age", "income", "country", "approved", "extra"].into_iter().zip(cols),
        )
        .unwrap();
        let pq = dir.path().join("d.parquet");
        let mut w = parquet::arrow::ArrowWriter::try_new(std::fs::File::create(&pq).unwrap(), batch.schema(), None).unwrap();
        w.write(&batch).unwrap();
        w.close().unwrap();

        for (s, p) in schemas.iter().zip([&csv, &jsonl, &pq]) {
            let r = ingest_file(&store, s, p).await;
            assert_eq!((r.accepted, r.quarantined), (3, 0), "{}: {r:?}", s.name);
        }
        let cols = ["request_id", "ts", "age", "income", "country", "approved"];
        let want = store.scan_batches("from_csv", &cols, None, i64::MAX).await.unwrap();
        assert_eq!(ints(&want, 1)[1], Some(T0 + 1_500_000));
        for name in ["from_jsonl", "from_parquet"] {
            let got = store.scan_batches(name, &cols, None, i64::MAX).await.unwrap();
            assert_eq!(got, want, "{name} differs from CSV");
        }
        let e_csv: Vec<_> = store.extras("from_csv", None, i64::MAX).await.unwrap().into_iter().map(|e| e.2).collect();
        let e_pq: Vec<_> = store.extras("from_parquet", None, i64::MAX).await.unwrap().into_iter().map(|e| e.2).collect();
        assert_eq!(e_csv, e_pq);
    })
    .await;
}

#[tokio::test]
async fn latest_by_key_returns_one_row_per_wanted_key_before_the_time() {
    each_backend(|store, dir| async move {
        let mut schema = inference();
        schema.name = "feedback".into();
        let p = write(
            &dir,
            "f.csv",
            "request_id,ts,age,country\nk1,2026-03-01T00:00:00Z,1,DE\nk1,2026-03-01T02:00:00Z,2,FR\nk2,2026-03-01T01:00:00Z,3,DE\nk1,2026-03-01T05:00:00Z,4,DE\n,2026-03-01T01:00:00Z,5,FR\nk3,2026-03-01T00:30:00Z,6,\n",
        );
        ingest_file(&store, &schema, &p).await;
        let latest = |keys: &[&str]| {
            let (store, keys): (_, Vec<String>) =
                (store.clone(), keys.iter().map(|k| k.to_string()).collect());
            async move {
                let refs: Vec<&str> = keys.iter().map(String::as_str).collect();
                let b = store
                    .latest_by_key("feedback", &["request_id", "age", "ts"], T0 + 3 * HOUR, "request_id", &refs)
                    .await
                    .unwrap();
                let mut got: Vec<_> = strs(&b, 0)
                    .into_iter()
                    .zip(ints(&b, 1))
                    .zip(ints(&b, 2))
                    .collect();
                got.sort();
                got
            }
        };
        let k1 = ((Some("k1".to_string()), Some(2)), Some(T0 + 2 * HOUR));
        let k2 = ((Some("k2".to_string()), Some(3)), Some(T0 + HOUR));
        // Only the keys asked for; a key without a row before the time gives none.
        assert_eq!(latest(&["k1", "k2", "nope"]).await, vec![k1, k2.clone()]);
        assert_eq!(latest(&["k2"]).await, vec![k2]);
        assert_eq!(latest(&[]).await, vec![]);
        // A join may match on another string column: the latest row per value.
        let b = store
            .latest_by_key(
                "feedback",
                &["country", "age", "ts"],
                T0 + 3 * HOUR,
                "country",
                &["DE", "FR", "GB"],
            )
            .await
            .unwrap();
        let mut got: Vec<_> = strs(&b, 0).into_iter().zip(ints(&b, 1)).collect();
        got.sort();
        assert_eq!(got, vec![(Some("DE".into()), Some(3)), (Some("FR".into()), Some(2))]);
        let err = store
            .latest_by_key("feedback", &["age"], T0, "agee", &["x"])
            .await
            .unwrap_err();
        assert!(err.to_string().contains("no column `agee`"), "{err}");
    })
    .await;
}

/// Many keys over many time slices (small segments make a slice 32 x 256 rows), some keys
/// with two rows, half the wanted keys absent: the latest row of each wanted key, on SQLite
/// with and without segments, in memory, and on PostgreSQL.
#[tokio::test]
async fn latest_by_key_over_many_slices_finds_each_wanted_key() {
    let mut schema = inference();
    schema.name = "feedback".into();
    let mut csv = String::from("request_id,ts,age\n");
    for i in 0..40_000u32 {
        // Key k{i % 25000}: keys below 15,000 get two rows, 25,000 s apart.
        let t = T0 / 1_000_000 + i64::from(i);
        csv.push_str(&format!("k{},{t},{i}\n", i % 25_000));
    }
    let wanted: Vec<String> = (0..50_000).step_by(2).map(|i| format!("k{i}")).collect();
    let before = T0 + 35_000 * 1_000_000;
    let check = |store: mlc_store::Store, dir: tempfile::TempDir| {
        let (schema, csv, wanted) = (schema.clone(), csv.clone(), wanted.clone());
        async move {
            let p = write(&dir, "f.csv", &csv);
            ingest_file(&store, &schema, &p).await;
            let refs: Vec<&str> = wanted.iter().map(String::as_str).collect();
            // Every row of the wanted keys before the time, in time order.
            let cols = ["request_id", "age", "ts"];
            let all = store
                .rows_by_key("feedback", &cols, before, "request_id", &refs)
                .await
                .unwrap();
            let times: Vec<i64> = ints(&all, 2).into_iter().map(Option::unwrap).collect();
            assert!(times.windows(2).all(|w| w[0] <= w[1]), "time order");
            let want: Vec<i64> = (0..35_000).filter(|i| (i % 25_000) % 2 == 0).collect();
            let got: Vec<i64> = ints(&all, 1).into_iter().map(Option::unwrap).collect();
            assert_eq!(got, want);
            let b = store
                .latest_by_key(
                    "feedback",
                    &["request_id", "age", "ts"],
                    before,
                    "request_id",
                    &refs,
                )
                .await
                .unwrap();
            let mut got: Vec<_> = strs(&b, 0).into_iter().zip(ints(&b, 1)).collect();
            got.sort();
            // Every even key below 25,000 has a row; its latest before the time is the
            // second (i + 25,000) when that is before it, else the first.
            assert_eq!(got.len(), 12_500);
            for (k, age) in &got {
                let i: i64 = k.as_ref().unwrap()[1..].parse().unwrap();
                let want = if i + 25_000 < 35_000 { i + 25_000 } else { i };
                assert_eq!(*age, Some(want), "{k:?}");
            }
        }
    };
    for params in ["?segment_rows=256", "?segment_rows=0"] {
        let dir = tempfile::tempdir().unwrap();
        let url = format!("sqlite://{}/s.db{params}", dir.path().display());
        let store = mlc_store::Store::open(&url).await.unwrap();
        check(store.clone(), tempfile::tempdir().unwrap()).await;
        store.close().await;
    }
    let store = mlc_store::Store::open("sqlite::memory:").await.unwrap();
    check(store, tempfile::tempdir().unwrap()).await;
    each_backend(check).await;
}

/// `time_slices` cuts a range into slices that cover it exactly, each of about the rows asked
/// for where segments give an estimate (one slice elsewhere), and reading slice by slice
/// gives the rows of one whole read, in the same order.
#[tokio::test]
async fn time_slices_cover_the_range_and_read_what_one_read_gives() {
    let mut csv = String::from("request_id,ts,age\n");
    for i in 0..20_000u32 {
        let t = T0 / 1_000_000 + i64::from(i / 3);
        csv.push_str(&format!("k{i},{t},{i}\n"));
    }
    let (start, end) = (Some(T0 + 1_000 * 1_000_000), T0 + 6_000 * 1_000_000);
    let check = |store: mlc_store::Store, dir: tempfile::TempDir, sliced: bool| {
        let csv = csv.clone();
        async move {
            let p = write(&dir, "f.csv", &csv);
            ingest_file(&store, &inference(), &p).await;
            let slices = store
                .time_slices("inference", start, end, 2_000)
                .await
                .unwrap();
            assert_eq!(slices.first().unwrap().0, start);
            assert_eq!(slices.last().unwrap().1, end);
            // Adjacent, and each slice non-empty in time.
            assert!(slices.windows(2).all(|w| Some(w[0].1) == w[1].0));
            assert!(slices.iter().all(|(lo, hi)| lo.is_none_or(|lo| lo < *hi)));
            let est = store.estimate_rows("inference", start, end).await.unwrap();
            if sliced {
                // 15,000 rows in range: about 8 slices of 2,000.
                assert!((6..=10).contains(&slices.len()), "{slices:?}");
                let est = est.unwrap();
                assert!((14_000..=16_000).contains(&est), "{est}");
            } else {
                assert_eq!(slices.len(), 1);
                // PostgreSQL counts the range exactly; SQLite without segments has no
                // estimate.
                assert_eq!(est, store.counts_rows().then_some(15_000));
            }
            let cols = ["request_id", "ts", "age"];
            let whole = store
                .scan_batches("inference", &cols, start, end)
                .await
                .unwrap();
            let mut parts = Vec::new();
            for (lo, hi) in &slices {
                parts.extend(
                    store
                        .scan_batches("inference", &cols, *lo, *hi)
                        .await
                        .unwrap(),
                );
            }
            assert_eq!(ints(&whole, 2).len(), 15_000);
            assert_eq!(ints(&parts, 2), ints(&whole, 2));
            assert_eq!(strs(&parts, 0), strs(&whole, 0));
        }
    };
    for (params, sliced) in [("?segment_rows=256", true), ("?segment_rows=0", false)] {
        let dir = tempfile::tempdir().unwrap();
        let url = format!("sqlite://{}/s.db{params}", dir.path().display());
        let store = mlc_store::Store::open(&url).await.unwrap();
        check(store.clone(), tempfile::tempdir().unwrap(), sliced).await;
        store.close().await;
    }
    let store = mlc_store::Store::open("sqlite::memory:").await.unwrap();
    check(store, tempfile::tempdir().unwrap(), false).await;
    each_backend(|store, dir| check(store, dir, false)).await;
}

#[tokio::test]
async fn unknown_components_and_columns_are_clear_errors() {
    each_backend(|store, _dir| async move {
        let err = store
            .scan_batches("nope", &["a"], None, 0)
            .await
            .unwrap_err();
        assert!(
            err.to_string().contains("unknown component `nope`"),
            "{err}"
        );
        store.ensure_component(&inference()).await.unwrap();
        let err = store
            .scan_batches("inference", &["agee"], None, 0)
            .await
            .unwrap_err();
        assert!(err.to_string().contains("no column `agee`"), "{err}");
    })
    .await;
}

#[tokio::test]
async fn results_are_stored_and_filtered() {
    each_backend(|store, _dir| async move {
        let mk = |check: &str, at: i64, status: &str| StoredResult {
            check: check.into(),
            at_us: at,
            status: status.into(),
            rules_version: "sha256:x".into(),
            slice: "{}".into(),
            column: None,
            json: format!("{{\"check\":\"{check}\"}}"),
        };
        let mut with_col = mk("drift", T0, "fail");
        with_col.column = Some("age".into());
        with_col.slice = "{\"country\":\"DE\"}".into();
        store
            .insert_results(&[
                mk("recall", T0, "pass"),
                mk("recall", T0 + HOUR, "fail"),
                with_col.clone(),
            ])
            .await
            .unwrap();
        let all = store.query_results(&ResultQuery::default()).await.unwrap();
        assert_eq!(all.len(), 3);
        assert_eq!(all[0].at_us, T0 + HOUR, "newest first");
        assert_eq!(all[1], with_col, "every field round-trips");
        let q = ResultQuery {
            check: Some("recall".into()),
            ..Default::default()
        };
        assert_eq!(store.query_results(&q).await.unwrap().len(), 2);
        let q = ResultQuery {
            status: Some("fail".into()),
            since_us: Some(T0 + 1),
            ..Default::default()
        };
        let got = store.query_results(&q).await.unwrap();
        assert_eq!((got.len(), got[0].check.as_str()), (1, "recall"));
        let q = ResultQuery {
            limit: Some(1),
            offset: 1,
            ..Default::default()
        };
        assert_eq!(store.query_results(&q).await.unwrap(), vec![with_col]);
    })
    .await;
}

#[tokio::test]
async fn prune_deletes_old_records_in_batches() {
    each_backend(|store, dir| async move {
        let schema = inference();
        let mut csv = String::from("request_id,ts\n");
        for i in 0..250 {
            csv.push_str(&format!("r{i},{}\n", 1_772_323_200 + i * 60));
        }
        let p = write(&dir, "p.csv", csv);
        ingest_file(&store, &schema, &p).await;
        let cut = T0 + 100 * 60_000_000;
        assert_eq!(store.prune(Some("inference"), cut, 30).await.unwrap(), 100);
        assert_eq!(store.count("inference").await.unwrap(), 150);
        // Pruning the oldest rows lowers the bound with the count.
        assert_eq!(store.rows_at_most("inference").await.unwrap(), 150);
        assert_eq!(store.prune(None, cut, 30).await.unwrap(), 0);
    })
    .await;
}

#[tokio::test]
async fn scans_stream_bounded_batches() {
    each_backend(|store, dir| async move {
        use futures::StreamExt;
        let schema = inference();
        let n = mlc_store::READ_BATCH_ROWS + 10;
        let mut csv = String::with_capacity(n * 40);
        csv.push_str("request_id,ts,age\n");
        for i in 0..n {
            csv.push_str(&format!("r{i},{},{i}\n", 1_772_323_200 + i));
        }
        let p = write(&dir, "big.csv", csv);
        let r = ingest_file(&store, &schema, &p).await;
        assert_eq!(r.accepted as usize, n);
        let mut s = store
            .scan("inference", &["age"], None, i64::MAX)
            .await
            .unwrap();
        let mut sizes = Vec::new();
        while let Some(b) = s.next().await {
            sizes.push(b.unwrap().num_rows());
        }
        assert_eq!(sizes, vec![mlc_store::READ_BATCH_ROWS, 10]);
    })
    .await;
}

#[tokio::test]
async fn stdin_and_bytes_inputs_and_parquet_from_a_stream_is_refused() {
    each_backend(|store, _dir| async move {
        let schema = inference();
        let body: std::sync::Arc<[u8]> =
            br#"[{"request_id":"a","ts":"2026-03-01T00:00:00Z"},{"request_id":"b","ts":"bad"}]"#
                .to_vec()
                .into();
        let r = ingest(
            &store,
            &schema,
            Input::Bytes(body.clone()),
            Format::Jsonl,
            &IngestOptions::default(),
            None,
        )
        .await
        .unwrap();
        assert_eq!((r.accepted, r.quarantined), (1, 1), "{r:?}");
        assert!(r.reasons[0].contains("element 2"), "{:?}", r.reasons);
        let r = ingest(
            &store,
            &schema,
            Input::Bytes(body),
            Format::Parquet,
            &IngestOptions::default(),
            None,
        )
        .await
        .unwrap();
        assert!(r.error.unwrap().contains("needs random access"));
    })
    .await;
}

#[tokio::test]
async fn service_state_and_slot_claims() {
    each_backend(|store, _dir| async move {
        assert_eq!(store.get_state("alerts").await.unwrap(), None);
        store.put_state("alerts", "{\"v\":1}").await.unwrap();
        store.put_state("alerts", "{\"v\":2}").await.unwrap();
        assert_eq!(
            store.get_state("alerts").await.unwrap().as_deref(),
            Some("{\"v\":2}")
        );
        // Replicas racing for one slot over separate connections: exactly one wins, and a
        // latecomer (even the winner asking again) is refused.
        let claims = (0..8).map(|i| {
            let store = store.clone();
            async move {
                store
                    .claim_slot("recall", T0, &format!("replica-{i}"))
                    .await
            }
        });
        let won: Vec<bool> = futures::future::join_all(claims)
            .await
            .into_iter()
            .map(Result::unwrap)
            .collect();
        assert_eq!(won.iter().filter(|w| **w).count(), 1, "{won:?}");
        assert!(!store.claim_slot("recall", T0, "replica-0").await.unwrap());
        assert!(
            store
                .claim_slot("recall", T0 + HOUR, "replica-0")
                .await
                .unwrap()
        );
        assert!(store.claim_slot("drift", T0, "replica-0").await.unwrap());
    })
    .await;
}

#[tokio::test]
async fn whole_range_reads_come_back_in_time_order_after_out_of_order_ingest() {
    each_backend(|store, dir| async move {
        let schema = inference();
        // Ingested newest first: storage order is the reverse of time order.
        let mut csv = String::from("request_id,ts,age\n");
        for i in (0..500).rev() {
            csv.push_str(&format!("r{i},{},{i}\n", 1_772_323_200 + i * 60));
        }
        let p = write(&dir, "rev.csv", csv);
        ingest_file(&store, &schema, &p).await;
        for (start, end, first, n) in [
            (None, T0 + 1000 * 60_000_000, 0, 500),
            (Some(T0 + 100 * 60_000_000), T0 + 110 * 60_000_000, 100, 10),
        ] {
            let batches = store
                .scan_batches("inference", &["ts", "age"], start, end)
                .await
                .unwrap();
            let ages: Vec<Option<i64>> = ints(&batches, 1);
            let want: Vec<Option<i64>> = (first..first + n).map(Some).collect();
            assert_eq!(ages, want);
        }
    })
    .await;
}

/// One record of [`copy_rows`]: key, hour after `T0`, int, float, bool, string, timestamp, extra.
type Rec<'a> = (
    Option<&'a str>,
    i64,
    Option<i64>,
    Option<f64>,
    Option<bool>,
    Option<&'a str>,
    Option<i64>,
    Option<&'a str>,
);

fn copy_schema() -> mlc_store::ComponentSchema {
    mlc_store::ComponentSchema {
        name: "copycheck".into(),
        key: "k".into(),
        time: "t".into(),
        fields: vec![
            field("i", DataType::Int),
            field("x", DataType::Float),
            field("b", DataType::Bool),
            field("s", DataType::String),
            field("ts", DataType::Timestamp),
        ],
    }
}

fn copy_rows(recs: &[Rec]) -> mlc_store::Rows {
    use mlc_store::Column;
    let owned = |s: Option<&str>| s.map(str::to_string);
    mlc_store::Rows {
        key: recs.iter().map(|r| owned(r.0)).collect(),
        time: recs.iter().map(|r| T0 + r.1 * HOUR).collect(),
        fields: vec![
            Column::Int(recs.iter().map(|r| r.2).collect()),
            Column::Float(recs.iter().map(|r| r.3).collect()),
            Column::Bool(recs.iter().map(|r| r.4).collect()),
            Column::Str(recs.iter().map(|r| owned(r.5)).collect()),
            Column::Timestamp(recs.iter().map(|r| r.6).collect()),
        ],
        extra: recs.iter().map(|r| owned(r.7)).collect(),
    }
}

/// PostgreSQL writes a batch by COPY straight into the table and falls back to its
/// deduplicating stage table when the batch meets a stored or repeated record: the counts
/// and the stored values must be exactly those of the deduplicating path, whichever path ran.
#[tokio::test]
async fn direct_copy_and_its_fallback_keep_counts_and_values_exact() {
    each_backend(|store, dir| async move {
        let pg = store.backend() == "postgres";
        let schema = copy_schema();
        store.ensure_component(&schema).await.unwrap();
        let put = |recs: Vec<Rec<'static>>| {
            let (store, schema) = (store.clone(), schema.clone());
            async move {
                let o = store
                    .write_batch(&schema, &copy_rows(&recs), &[])
                    .await
                    .unwrap();
                (o.accepted, o.duplicates)
            }
        };
        let text = "tab\there line\nbreak cr\rlf back\\slash \\N \\. ünïcødé ✓ 日本";
        #[rustfmt::skip]
        let first: Vec<Rec> = vec![
            (Some("a"), 0, Some(1), Some(1.5), Some(true), Some(text), Some(T0), Some(r#"{"n":1,"q":"\t\\"}"#)),
            (None, 1, None, None, None, None, None, None),
            (Some("c"), 2, Some(i64::MIN), Some(f64::INFINITY), Some(false), Some(""), Some(-1), None),
            (Some("d"), 3, Some(i64::MAX), Some(f64::NEG_INFINITY), None, Some("é"), None, Some("{}")),
            (Some("e\tf"), 4, Some(-7), Some(f64::NAN), Some(true), Some("x"), Some(0), None),
            (Some("g"), 5, Some(0), Some(-0.0), Some(false), Some("y"), Some(i64::MAX), None),
        ];
        // All new: on PostgreSQL the direct COPY.
        assert_eq!(put(first.clone()).await, (6, 0));
        // A repeated key and time inside the batch, a null key among them: the first one wins.
        let repeated: Vec<Rec> = vec![
            (Some("h"), 6, Some(60), None, None, None, None, None),
            (Some("h"), 6, Some(61), None, None, None, None, None),
            (None, 7, Some(70), None, None, None, None, None),
            (None, 7, Some(71), None, None, None, None, None),
        ];
        assert_eq!(put(repeated).await, (2, 2));
        // Overlapping stored records (with other values, which must not replace them).
        #[rustfmt::skip]
        let overlap: Vec<Rec> = vec![
            (Some("a"), 0, Some(999), Some(9.0), None, Some("new"), None, None),
            (None, 1, Some(998), None, None, None, None, None),
            (Some("i"), 8, Some(80), Some(8.25), None, None, None, None),
        ];
        assert_eq!(put(overlap).await, (1, 2));
        // All stored already.
        assert_eq!(put(first).await, (0, 6));
        // Two writers of the same new records at once: each stored once, the rest counted.
        let same: Vec<Rec> = (100..400)
            .map(|h| (Some("w"), h, Some(h), None, None, None, None, None))
            .collect();
        let (x, y) = tokio::join!(put(same.clone()), put(same));
        assert_eq!((x.0 + y.0, x.1 + y.1), (300, 300), "{x:?} {y:?}");
        if pg {
            // A NUL cannot be in a PostgreSQL text value: stored as the characters `\0`.
            let nul: Vec<Rec> = vec![(
                Some("n"),
                9,
                None,
                None,
                None,
                Some("a\0b"),
                None,
                Some("\0"),
            )];
            assert_eq!(put(nul).await, (1, 0));
        }
        assert_eq!(
            store.count("copycheck").await.unwrap(),
            if pg { 310 } else { 309 }
        );

        let cols = ["k", "t", "i", "x", "b", "s", "ts"];
        let b = store
            .scan_batches("copycheck", &cols, None, T0 + 10 * HOUR)
            .await
            .unwrap();
        let keys = strs(&b, 0);
        let n = if pg { 10 } else { 9 };
        let some = |s: &str| Some(s.to_string());
        let mut want_keys = vec![
            some("a"),
            None,
            some("c"),
            some("d"),
            some("e\tf"),
            some("g"),
            some("h"),
            None,
            some("i"),
        ];
        if pg {
            want_keys.push(some("n"));
        }
        assert_eq!(keys, want_keys);
        assert_eq!(
            ints(&b, 1),
            (0..n).map(|h| Some(T0 + h * HOUR)).collect::<Vec<_>>()
        );
        assert_eq!(
            ints(&b, 2)[..9],
            [
                Some(1),
                None,
                Some(i64::MIN),
                Some(i64::MAX),
                Some(-7),
                Some(0),
                Some(60),
                Some(70),
                Some(80)
            ]
        );
        let x = floats(&b, 3);
        assert_eq!(
            x[..4],
            [
                Some(1.5),
                None,
                Some(f64::INFINITY),
                Some(f64::NEG_INFINITY)
            ]
        );
        if pg {
            assert!(x[4].is_some_and(f64::is_nan), "{x:?}");
            assert!(
                x[5].is_some_and(|v| v == 0.0 && v.is_sign_negative()),
                "{x:?}"
            );
        }
        assert_eq!(x[6..9], [None, None, Some(8.25)]);
        assert_eq!(
            bools(&b, 4)[..9],
            [
                Some(true),
                None,
                Some(false),
                None,
                Some(true),
                Some(false),
                None,
                None,
                None
            ]
        );
        let s = strs(&b, 5);
        assert_eq!(
            s[..6],
            [some(text), None, some(""), some("é"), some("x"), some("y")]
        );
        if pg {
            assert_eq!(s[9], some("a\\0b"));
        }
        assert_eq!(
            ints(&b, 6)[..6],
            [Some(T0), None, Some(-1), None, Some(0), Some(i64::MAX)]
        );
        let extras = store
            .extras("copycheck", None, T0 + 10 * HOUR)
            .await
            .unwrap();
        let extras: Vec<Option<String>> = extras.into_iter().map(|e| e.2).collect();
        assert_eq!(
            extras[..4],
            [some(r#"{"n":1,"q":"\t\\"}"#), None, None, some("{}")]
        );
        if pg {
            assert_eq!(extras[9], some("\\0"));
        }

        // Through ingest, in batches of two: a clean batch, one with a repeated record, the one
        // after it (PostgreSQL expects duplicates there and goes straight to the stage table),
        // a clean one again; then the whole file again, then a file half stored already.
        let day = 1_772_409_600; // 2026-03-02T00:00:00Z
        let line = |k: &str, h: i64, i: i64| format!("{k},{},{i}\n", day + h * 3600);
        let mut csv = String::from("k,t,i\n");
        for (k, h, i) in [
            ("p1", 0, 1),
            ("p2", 1, 2),
            ("p3", 2, 3),
            ("p3", 2, 4),
            ("p4", 3, 5),
            ("p5", 4, 6),
            ("p6", 5, 7),
            ("p7", 6, 8),
        ] {
            csv.push_str(&line(k, h, i));
        }
        let opts = IngestOptions {
            batch_rows: 2,
            ..IngestOptions::default()
        };
        let run = |name: &str, content: String| {
            let path = write(&dir, name, content);
            let (store, schema, opts) = (store.clone(), schema.clone(), opts.clone());
            async move {
                let r = ingest(&store, &schema, Input::Path(path), Format::Csv, &opts, None)
                    .await
                    .unwrap();
                (r.accepted, r.duplicates, r.quarantined)
            }
        };
        assert_eq!(run("a.csv", csv.clone()).await, (7, 1, 0));
        assert_eq!(run("a.csv", csv).await, (0, 8, 0));
        let mut half = String::from("k,t,i\n");
        for (k, h, i) in [("p6", 5, 70), ("p7", 6, 80), ("p8", 7, 9), ("p9", 8, 10)] {
            half.push_str(&line(k, h, i));
        }
        assert_eq!(run("b.csv", half).await, (2, 2, 0));
        let b = store
            .scan_batches(
                "copycheck",
                &["k", "i"],
                Some(day * 1_000_000),
                T0 + 100 * HOUR,
            )
            .await
            .unwrap();
        assert_eq!(
            ints(&b, 1),
            (1..=10).filter(|&i| i != 4).map(Some).collect::<Vec<_>>()
        );
    })
    .await;
}

#[tokio::test]
async fn the_change_journal_records_the_minutes_that_gained_or_lost_rows() {
    const M: i64 = 60_000_000;
    const H: i64 = 60 * M;
    async fn check(store: mlc_store::Store, dir: tempfile::TempDir) {
        let schema = inference();
        store.ensure_component(&schema).await.unwrap();
        let start = store.changes_since(None).await.unwrap();
        assert!(!start.complete);
        let nothing = store.changes_since(Some(start.last)).await.unwrap();
        assert!(
            nothing.complete && nothing.changes.is_empty(),
            "{nothing:?}"
        );

        // Rows at T0 and T0 + 1 min, and a late one three hours earlier: two ranges.
        let csv = "request_id,ts\na,1772323200\nb,1772323260\nc,1772312400\n";
        let p = write(&dir, "a.csv", csv);
        ingest_file(&store, &schema, &p).await;
        let log = store.changes_since(Some(start.last)).await.unwrap();
        assert!(log.complete);
        let got: Vec<(i64, i64)> = log.changes.iter().map(|c| (c.from_us, c.to_us)).collect();
        // Whole minutes, adjacent ones joined.
        assert_eq!(got, vec![(T0 - 3 * H, T0 - 3 * H + M), (T0, T0 + 2 * M)]);
        // A SQLite file numbers the rows a write stored; other stores do not.
        let numbered = log.changes.iter().all(|c| c.rowids.is_some());
        assert!(numbered || log.changes.iter().all(|c| c.rowids.is_none()));
        if let Some((first, last)) = log.changes[0].rowids {
            let rows = store
                .rows_by_rowid(
                    "inference",
                    &["request_id", "ts"],
                    (first, last),
                    (0, i64::MAX),
                )
                .await
                .unwrap();
            let mut ids = strs(&rows, 0);
            ids.sort();
            assert_eq!(
                ids,
                vec![Some("a".into()), Some("b".into()), Some("c".into())]
            );
        }
        assert!(log.changes.iter().all(|c| c.component == "inference"));

        // The same file again stores nothing, and records nothing.
        ingest_file(&store, &schema, &p).await;
        let again = store.changes_since(Some(log.last)).await.unwrap();
        assert!(again.complete && again.changes.is_empty(), "{again:?}");

        // A prune that deletes rows records everything before its cut; one that deletes
        // none records nothing.
        assert_eq!(store.prune(Some("inference"), T0, 100).await.unwrap(), 1);
        assert_eq!(store.prune(Some("inference"), T0, 100).await.unwrap(), 0);
        let pruned = store.changes_since(Some(log.last)).await.unwrap();
        let got: Vec<(i64, i64)> = pruned
            .changes
            .iter()
            .map(|c| (c.from_us, c.to_us))
            .collect();
        assert_eq!(got, vec![(i64::MIN, T0)]);

        // Trimming keeps the newest entry; a reader that had not seen the trimmed ones is told.
        assert_eq!(store.trim_changes(i64::MAX).await.unwrap(), 2);
        let after_trim = store.changes_since(Some(start.last)).await.unwrap();
        assert!(!after_trim.complete, "{after_trim:?}");
        let up_to_date = store.changes_since(Some(pruned.last)).await.unwrap();
        assert!(up_to_date.complete && up_to_date.changes.is_empty());
    }
    each_backend(check).await;
    // In-memory stores write through sqlx, not the file writer.
    let memory = mlc_store::Store::open("sqlite::memory:").await.unwrap();
    check(memory, tempfile::tempdir().unwrap()).await;
}
