//! Bad input gets a clear 4xx and leaves nothing half-written.

use reqwest::Method;
use serde_json::json;

use crate::helpers::*;

async fn patient_count(app: &TestApp) -> i64 {
    let t = app
        .store
        .territory_by_oid(server::demo::DEMO_DOMAIN_OID)
        .await
        .unwrap()
        .unwrap();
    app.store.count_patients(t.id).await.unwrap()
}

async fn raw(
    app: &TestApp,
    method: Method,
    path: &str,
    token: Option<&str>,
    ct: &str,
    body: String,
) -> Resp {
    let mut request = app
        .http
        .request(method, app.url(path))
        .header("content-type", ct)
        .body(body);
    if let Some(token) = token {
        request = request.bearer_auth(token);
    }
    read(request.send().await.unwrap()).await
}

/// `r` is refused with `status` and its page says `says`.
fn refused(r: &Resp, status: u16, says: &str) {
    assert_eq!(r.status, status, "{}", r.text);
    assert!(r.text.contains(says), "{says}: {}", r.text);
}

#[tokio::test]
async fn bad_fhir_requests_get_an_operation_outcome_and_change_nothing() {
    for backend in BACKENDS {
        let app = spawn_app_with(backend, |c| c.max_body_bytes = 4096).await;
        let token = app.token().await;
        let before = patient_count(&app).await;
        let fhir = "application/fhir+json";
        let mut wrong_key = patient_body(3, "QUAL");
        wrong_key["identifier"][0]["value"] = json!("276037510669380");
        let mut recup_without_ins = patient_body(4, "RECUP");
        recup_without_ins["identifier"] = json!([]);
        let mut telecom = patient_body(5, "QUAL");
        telecom["photo"] = json!([{"contentType": "image/png"}]);
        let cases: Vec<(Method, &str, &str, String, u16, &str)> = vec![
            (
                Method::POST,
                "/fhir/Patient",
                fhir,
                "{\"resourceType\": \"Patient\",".into(),
                400,
                "JSON invalide",
            ),
            (
                Method::POST,
                "/fhir/Patient",
                fhir,
                "[1, 2]".into(),
                400,
                "JSON invalide",
            ),
            (
                Method::POST,
                "/fhir/Patient",
                fhir,
                wrong_key.to_string(),
                422,
                "clé de contrôle",
            ),
            (
                Method::POST,
                "/fhir/Patient",
                fhir,
                recup_without_ins.to_string(),
                422,
                "RECUP",
            ),
            (
                Method::POST,
                "/fhir/Patient",
                fhir,
                telecom.to_string(),
                422,
                "Patient.photo",
            ),
            (
                Method::POST,
                "/fhir/Patient",
                "text/plain",
                patient_body(6, "QUAL").to_string(),
                400,
                "Content-Type",
            ),
            (
                Method::POST,
                "/fhir/Patient",
                fhir,
                format!("{{\"x\": \"{}\"}}", "a".repeat(10_000)),
                413,
                "trop volumineuse",
            ),
            (
                Method::POST,
                "/fhir/MedicationStatement",
                fhir,
                "{}".into(),
                404,
                "non pris en charge",
            ),
            (
                Method::POST,
                "/fhir/Flag",
                fhir,
                "{}".into(),
                405,
                "interaction non prise en charge",
            ),
            (
                Method::POST,
                "/fhir/Observation",
                fhir,
                "{}".into(),
                400,
                "Observation illisible",
            ),
            (
                Method::GET,
                "/fhir/Flag",
                fhir,
                String::new(),
                400,
                "paramètre patient obligatoire",
            ),
            (
                Method::GET,
                "/fhir/Foo/1",
                fhir,
                String::new(),
                404,
                "non pris en charge",
            ),
            (
                Method::GET,
                "/fhir/Patient/not-a-uuid",
                fhir,
                String::new(),
                404,
                "introuvable",
            ),
            (
                Method::GET,
                "/fhir/Patient/01900000-0000-7000-8000-000000000000",
                fhir,
                String::new(),
                404,
                "introuvable",
            ),
            (
                Method::GET,
                "/fhir/Patient?_sort=family",
                fhir,
                String::new(),
                400,
                "_sort",
            ),
            (
                Method::GET,
                "/fhir/Encounter?patient=Patient/x&_include=Encounter:location",
                fhir,
                String::new(),
                400,
                "_include",
            ),
            (
                Method::GET,
                "/fhir/Patient?birthdate=gt1960-01-01",
                fhir,
                String::new(),
                400,
                "birthdate",
            ),
            (
                Method::GET,
                "/fhir/Patient?identifier=123",
                fhir,
                String::new(),
                400,
                "system|value",
            ),
            (
                Method::GET,
                "/fhir/Patient?identifier=urn:oid:9.9.9%7C1",
                fhir,
                String::new(),
                400,
                "inconnu",
            ),
            (
                Method::GET,
                "/fhir/Patient?_count=-1",
                fhir,
                String::new(),
                400,
                "_count",
            ),
            (
                Method::DELETE,
                "/fhir/Patient/01900000-0000-7000-8000-000000000000",
                fhir,
                String::new(),
                405,
                "interaction",
            ),
            (
                Method::POST,
                "/fhir/Patient/$merge",
                fhir,
                "{\"resourceType\":\"Parameters\"}".into(),
                400,
                "source-patient",
            ),
        ];
        for (method, path, ct, body, status, needle) in cases {
            let r = raw(&app, method.clone(), path, Some(&token), ct, body).await;
            assert_eq!(r.status, status, "{backend} {method} {path}: {}", r.text);
            let msg = r.outcome();
            assert!(
                msg.contains(needle),
                "{backend} {method} {path}: {msg:?} lacks {needle:?}"
            );
        }
        assert_eq!(
            patient_count(&app).await,
            before,
            "{backend}: nothing half-written"
        );
        // A duplicate INS is a conflict, and still writes nothing.
        assert_eq!(
            app.send_json(
                Method::POST,
                "/fhir/Patient",
                &token,
                &patient_body(8, "QUAL")
            )
            .await
            .status,
            201
        );
        let r = app
            .send_json(
                Method::POST,
                "/fhir/Patient",
                &token,
                &patient_body(8, "QUAL"),
            )
            .await;
        assert_eq!(r.status, 409, "{backend}");
        assert!(r.outcome().contains("INS"));
        assert_eq!(patient_count(&app).await, before + 1);
        let r = read(
            app.http
                .put(app.url("/fhir/Patient/01900000-0000-7000-8000-000000000000"))
                .bearer_auth(&token)
                .header("content-type", fhir)
                .header("if-match", "version-1")
                .body(patient_body(9, "QUAL").to_string())
                .send()
                .await
                .unwrap(),
        )
        .await;
        assert_eq!(r.status, 400, "{}", r.text);
        assert!(r.outcome().contains("If-Match"));
        assert_eq!(app.store.verify_audit().await.unwrap().error, None);
    }
}

#[tokio::test]
async fn health_and_metrics() {
    let app = spawn_app_with("sqlite", |c| c.metrics_token = Some("t".into())).await;
    let r = app.get("/healthz", None).await;
    assert_eq!((r.status, r.text.as_str()), (200, "ok\n"));
    assert_eq!(app.get("/readyz", None).await.status, 200);
    app.get("/fhir/Patient", None).await;
    let m = app.get("/metrics", Some("t")).await.text;
    assert!(
        m.contains(
            "parcours_http_requests_total{route=\"/fhir/Patient\",method=\"GET\",status=\"4xx\"} 1"
        ),
        "{m}"
    );
    app.store.close().await;
    assert_eq!(
        app.get("/healthz", None).await.status,
        503,
        "store unreachable"
    );
}

#[tokio::test]
async fn malformed_queries_and_forms_are_refused_in_french() {
    // The extractors are the same whatever the engine.
    let app = spawn_app_with("sqlite", |c| c.max_body_bytes = 4096).await;
    let nurse = app.login("ide.petit").await;
    let r = app.get_page("/patients?nom=a&nom=b", &nurse).await;
    // (The apostrophe comes out escaped in the page.)
    refused(
        &r,
        400,
        "le paramètre « nom » est donné plus d&#39;une fois",
    );
    assert!(!r.text.contains("Failed to deserialize"), "{}", r.text);
    // The same search asked once is served.
    assert_eq!(app.get_page("/patients?nom=a", &nurse).await.status, 200);

    let form = "application/x-www-form-urlencoded";
    let login = |body: String, ct: &'static str| raw(&app, Method::POST, "/login", None, ct, body);
    let r = login("username=a&username=b&password=x&csrf=y".into(), form).await;
    refused(&r, 400, "« username » est donné plus d");
    // Over the body limit: a 413 that names it.
    let r = login(format!("username={}", "a".repeat(5000)), form).await;
    refused(&r, 413, "requête trop volumineuse (limite 4096 octets)");
    let r = login("username=a".into(), "text/plain").await;
    refused(
        &r,
        400,
        "le formulaire doit être envoyé en application/x-www-form-urlencoded",
    );
}
