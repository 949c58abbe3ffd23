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
async fn latest_by_key_returns_one_row_per_key_before_the_time() {
    each_backend(|store, dir| async move {
        let mut schema = inference();
        schema.name = "feedback".into();
        let p = write(
            &dir,
            "f.csv",
            "request_id,ts,age\nk1,2026-03-01T00:00:00Z,1\nk1,2026-03-01T02:00:00Z,2\nk2,2026-03-01T01:00:00Z,3\nk1,2026-03-01T05:00:00Z,4\n,2026-03-01T01:00:00Z,5\n",
        );
        ingest_file(&store, &schema, &p).await;
        let b = store
            .latest_by_key("feedback", &["request_id", "age", "ts"], T0 + 3 * HOUR)
            .await
            .unwrap();
        let mut got: Vec<_> = strs(&b, 0).into_iter().zip(ints(&b, 1)).zip(ints(&b, 2)).collect();
        got.sort();
        assert_eq!(
            got,
            vec![
                ((Some("k1".into()), Some(2)), Some(T0 + 2 * HOUR)),
                ((Some("k2".into()), Some(3)), Some(T0 + HOUR)),
            ]
        );
    })
    .await;
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
