//! Domain records to FHIR JSON.

use domain::audit::AuditEntry;
use domain::demographics::Demographics;
use domain::identity::{PatientRecord, Sex, exchangeable_ins};
use domain::ins::InsKind;
use jiff::Timestamp;
use serde_json::{Value, json};

use super::*;

pub(crate) fn instant(ms: i64) -> String {
    Timestamp::from_millisecond(ms)
        .unwrap_or(Timestamp::UNIX_EPOCH)
        .to_string()
}

fn gender(sex: Sex) -> &'static str {
    match sex {
        Sex::Male => "male",
        Sex::Female => "female",
        Sex::Unknown => "unknown",
    }
}

/// A Patient resource with its demographics `d`. The INS is included only when
/// the identity is qualified (the INS may be exchanged only then); the IPP uses
/// the domain's OID.
pub fn patient(p: &PatientRecord, d: &Demographics, domain_oid: &str) -> Value {
    let mut identifiers = Vec::new();
    if let Some(ins) = exchangeable_ins(p.ins.as_ref(), p.status) {
        let (code, usage) = match ins.kind() {
            InsKind::Nir => ("INS-NIR", "official"),
            InsKind::Nia => ("INS-NIA", "temp"),
        };
        identifiers.push(json!({
            "use": usage,
            "type": {"coding": [{"system": CS_FR_IDENTIFIER_TYPE, "code": code}]},
            "system": oid_system(ins.kind().oid()),
            "value": ins.value(),
        }));
    }
    identifiers.push(json!({
        "use": "usual",
        "type": {"coding": [{"system": CS_V2_0203, "code": "PI"}]},
        "system": oid_system(domain_oid),
        "value": p.ipp,
    }));
    let t = &p.traits;
    let mut names =
        vec![json!({"use": "official", "family": t.birth_name, "given": t.birth_given_names})];
    if t.used_name.is_some() || t.used_given_name.is_some() {
        // Only what differs from the birth traits: the reader falls back on them.
        let mut usual = json!({"use": "usual"});
        if let Some(o) = usual.as_object_mut() {
            if let Some(f) = &t.used_name {
                o.insert("family".into(), json!(f));
            }
            if let Some(g) = &t.used_given_name {
                o.insert("given".into(), json!([g]));
            }
        }
        names.push(usual);
    }
    let mut extensions = vec![json!({
        "url": EXT_IDENTITY_RELIABILITY,
        "extension": [{"url": "identityStatus", "valueCoding": {"system": CS_IDENTITY_STATUS, "code": p.status.code(), "display": p.status.label_fr()}}],
    })];
    let mut birth_address = serde_json::Map::new();
    if let Some(code) = &t.birthplace_code {
        birth_address.insert(
            "extension".into(),
            json!([{"url": EXT_INSEE_CODE, "valueCoding": {"system": CS_INSEE_COMMUNE, "code": code}}]),
        );
    }
    let mut details = serde_json::Map::new();
    super::details::write(&mut details, &mut birth_address, d);
    if !birth_address.is_empty() {
        let mut e = json!({"url": EXT_BIRTHPLACE});
        if let Some(o) = e.as_object_mut() {
            o.insert("valueAddress".into(), Value::Object(birth_address));
        }
        extensions.push(e);
    }
    let mut r = json!({
        "resourceType": "Patient",
        "id": p.id.to_string(),
        "meta": {"versionId": p.version.to_string(), "lastUpdated": instant(p.updated_at_ms), "profile": [PROFILE_FR_CORE_PATIENT]},
        "active": p.active(),
        "gender": gender(t.sex),
        "birthDate": t.birth_date.to_string(),
    });
    if let Some(obj) = r.as_object_mut() {
        // Moved in, not given to `json!`, which would copy them member by member.
        obj.insert("extension".into(), Value::Array(extensions));
        obj.insert("identifier".into(), Value::Array(identifiers));
        obj.insert("name".into(), Value::Array(names));
        obj.extend(details);
    }
    if let (Some(survivor), Some(obj)) = (p.merged_into, r.as_object_mut()) {
        obj.insert(
            "link".into(),
            json!([{"other": {"reference": format!("Patient/{survivor}")}, "type": "replaced-by"}]),
        );
    }
    r
}

/// What a Practitioner shows: a professional of the platform.
#[derive(Debug, Clone)]
pub struct PractitionerView {
    /// User id.
    pub id: String,
    /// Name as shown.
    pub display_name: String,
    /// RPPS, if any.
    pub rpps: Option<String>,
    /// Whether the account is active.
    pub active: bool,
}

/// A Practitioner resource (RPPS as IdNatPs: `8` + RPPS).
pub fn practitioner(p: &PractitionerView) -> Value {
    let mut r = json!({
        "resourceType": "Practitioner",
        "id": p.id,
        "active": p.active,
        "name": [{"text": p.display_name}],
    });
    if let (Some(rpps), Some(obj)) = (&p.rpps, r.as_object_mut()) {
        obj.insert(
            "identifier".into(),
            json!([{
                "use": "official",
                "type": {"coding": [{"system": CS_V2_0203, "code": "RPPS"}]},
                "system": oid_system(OID_IDNATPS),
                "value": format!("8{rpps}"),
            }]),
        );
    }
    fr_core(r)
}

/// What an Organization shows: a territory or an establishment.
#[derive(Debug, Clone)]
pub struct OrganizationView {
    /// Id.
    pub id: String,
    /// Name.
    pub name: String,
    /// FINESS, for establishments.
    pub finess: Option<String>,
    /// The territory, for establishments.
    pub part_of: Option<String>,
    /// `territory`, `public` or `private`.
    pub kind: String,
}

/// An Organization resource (FINESS as IdNatStruct: `1` + FINESS).
pub fn organization(o: &OrganizationView) -> Value {
    let label = match o.kind.as_str() {
        "territory" => "Domaine d'identification (GHT / territoire)",
        "private" => "Établissement privé",
        _ => "Établissement public",
    };
    let mut r = json!({
        "resourceType": "Organization",
        "id": o.id,
        "active": true,
        "type": [{"text": label}],
        "name": o.name,
    });
    if let Some(obj) = r.as_object_mut() {
        if let Some(f) = &o.finess {
            obj.insert(
                "identifier".into(),
                json!([{"system": oid_system(OID_IDNATSTRUCT), "value": format!("1{f}")}]),
            );
        }
        if let Some(t) = &o.part_of {
            obj.insert(
                "partOf".into(),
                json!({"reference": format!("Organization/{t}")}),
            );
        }
    }
    fr_core(r)
}

/// An AuditEvent for one entry of the trail.
pub fn audit_event(e: &AuditEntry) -> Value {
    let (action, subtype) = match e.action.as_str() {
        "create" => ("C", "create"),
        "update" | "merge" => ("U", "update"),
        "search" => ("E", "search-type"),
        "read" | "read-clinical" => ("R", "read"),
        _ => ("E", "operation"),
    };
    let outcome = match e.outcome.as_str() {
        "success" => "0",
        "denied" => "4",
        _ => "8",
    };
    let who = match e.actor_kind.as_str() {
        "user" => json!({"reference": format!("Practitioner/{}", e.actor_id)}),
        other => json!({"display": format!("{other} {}", e.actor_id)}),
    };
    let mut agent = json!({"who": who, "requestor": true});
    if let (Some(role), Some(obj)) = (&e.role, agent.as_object_mut()) {
        obj.insert("role".into(), json!([{"text": role}]));
    }
    let mut r = json!({
        "resourceType": "AuditEvent",
        "id": e.seq.to_string(),
        // The trail is append-only: an entry never changes.
        "meta": {"versionId": "1", "lastUpdated": instant(e.at_ms)},
        "type": {"system": "http://terminology.hl7.org/CodeSystem/audit-event-type", "code": "rest", "display": "RESTful Operation"},
        "subtype": [{"system": "http://hl7.org/fhir/restful-interaction", "code": subtype}],
        "action": action,
        "recorded": instant(e.at_ms),
        "outcome": outcome,
        "outcomeDesc": format!("{} {}", e.action, e.outcome),
        "agent": [agent],
        "source": {"observer": {"display": "Parcours"}, "site": e.establishment.clone().unwrap_or_default()},
        "entity": [{"what": {"reference": e.resource}, "description": format!("chain seq {} hash {}", e.seq, e.hash)}],
    });
    if e.establishment.is_none()
        && let Some(src) = r.get_mut("source").and_then(Value::as_object_mut)
    {
        src.remove("site");
    }
    if let (Some(p), Some(entities)) = (
        &e.patient,
        r.get_mut("entity").and_then(Value::as_array_mut),
    ) && !e.resource.starts_with("Patient/")
    {
        entities.push(json!({"what": {"reference": format!("Patient/{p}")}}));
    }
    r
}

/// An OperationOutcome with one issue.
pub fn operation_outcome(severity: &str, code: &str, diagnostics: &str) -> Value {
    json!({
        "resourceType": "OperationOutcome",
        "issue": [{"severity": severity, "code": code, "diagnostics": diagnostics}],
    })
}

/// The CapabilityStatement: exactly what the server implements.
pub fn capability_statement(base: &str, software_version: &str, date: &str) -> Value {
    json!({
        "resourceType": "CapabilityStatement",
        "status": "active",
        "date": date,
        "publisher": "Parcours",
        "kind": "instance",
        "software": {"name": "Parcours", "version": software_version},
        "implementation": {"description": "Parcours FHIR R4 API", "url": base},
        "fhirVersion": "4.0.1",
        "format": ["application/fhir+json", "json"],
        "rest": [{
            "mode": "server",
            "security": {
                "cors": false,
                "extension": [{
                    "url": "http://fhir-registry.smarthealthit.org/StructureDefinition/oauth-uris",
                    "extension": [{"url": "token", "valueUri": format!("{}/oauth/token", base.trim_end_matches("/fhir"))}],
                }],
                "service": [{
                    "coding": [{
                        "system": "http://terminology.hl7.org/CodeSystem/restful-security-service",
                        "code": "SMART-on-FHIR",
                    }],
                    "text": "OAuth2 client credentials (SMART Backend Services)",
                }],
                "description": "Jeton porteur obtenu sur POST /oauth/token (grant_type=client_credentials) avec une assertion signée (private_key_jwt, RS384 ou ES384 ; SMART Backend Services) ou un secret partagé ; portées system/… (SMART v2) appliquées en plus de la politique de l'établissement. Voir /.well-known/smart-configuration.",
            },
            "interaction": [
                {"code": "batch", "documentation": "Chaque entrée (GET, POST, PUT ; ifMatch, ifNoneExist) traitée comme une requête seule, 100 entrées au plus."},
                {"code": "transaction", "documentation": "Tout ou rien : Patient (POST, ifNoneExist ; PUT, ifMatch) et Observation (POST), 100 entrées au plus ; ou soumission de documents MHD (ITI-65). L'entrée refusée est nommée, rien n'est écrit."}
            ],
            "extension": [{
                "url": "http://hl7.org/fhir/StructureDefinition/capabilitystatement-websocket",
                "valueUri": format!("{}/Subscription/$websocket", base.replacen("http", "ws", 1)),
            }],
            "searchParam": common_search_params(),
            "resource": resources(),
        }],
    })
}

/// The parameters every search takes (`CapabilityStatement.rest.searchParam`).
fn common_search_params() -> Vec<Value> {
    vec![
        param(
            "_count",
            "number",
            "Taille de page (50 par défaut, 200 au plus)",
        ),
        param(
            "_offset",
            "number",
            "Décalage de page (liens first, previous et next du Bundle)",
        ),
        param(
            "_sort",
            "special",
            "_id, _lastUpdated (les types qui portent meta.lastUpdated), et date pour les types datés ; - pour décroissant",
        ),
        param(
            "_lastUpdated",
            "date",
            "Dernière modification (Patient, Encounter, Observation, QuestionnaireResponse, Communication, Location, Subscription, AuditEvent, List) : eq, gt, ge, lt, le + date ou instant (UTC)",
        ),
        param("_summary", "special", "count : le total seul"),
        param(
            "_include",
            "special",
            "Encounter:patient, DocumentReference:patient, Appointment:patient, Appointment:practitioner, HealthcareService:location",
        ),
        param(
            "_revinclude",
            "special",
            "Sur Patient : Encounter:patient, DocumentReference:patient, Appointment:patient",
        ),
    ]
}

/// The types searched by patient (or agenda) that are also read by id
/// (whose they are found from the id).
const READ_BY_ID: [&str; 11] = [
    "Observation",
    "Flag",
    "CarePlan",
    "Task",
    "QuestionnaireResponse",
    "Communication",
    "MedicationRequest",
    "List",
    "Schedule",
    "Slot",
    "HealthcareService",
];

/// The `_include` and `_revinclude` pairs each type offers, and the read of the
/// monitoring types.
fn with_includes(mut resources: Vec<Value>) -> Vec<Value> {
    for r in &mut resources {
        let ty = r
            .get("type")
            .and_then(Value::as_str)
            .unwrap_or("")
            .to_owned();
        if READ_BY_ID.contains(&ty.as_str())
            && let Some(list) = r.get_mut("interaction").and_then(Value::as_array_mut)
            && !list.iter().any(|i| i["code"] == "read")
        {
            list.insert(0, json!({"code": "read"}));
        }
        let (include, revinclude): (&[&str], &[&str]) = match ty.as_str() {
            "Encounter" => (&["Encounter:patient", "Encounter:subject"], &[]),
            "DocumentReference" => (
                &["DocumentReference:patient", "DocumentReference:subject"],
                &[],
            ),
            "Appointment" => (
                &[
                    "Appointment:patient",
                    "Appointment:actor",
                    "Appointment:practitioner",
                ],
                &[],
            ),
            "Patient" => (
                &[],
                &[
                    "Encounter:patient",
                    "DocumentReference:patient",
                    "Appointment:patient",
                ],
            ),
            _ => (&[], &[]),
        };
        if let Some(o) = r.as_object_mut() {
            if !include.is_empty() {
                o.insert("searchInclude".into(), json!(include));
            }
            if !revinclude.is_empty() {
                o.insert("searchRevInclude".into(), json!(revinclude));
            }
        }
    }
    resources
}

fn param(name: &str, ty: &str, doc: &str) -> Value {
    json!({"name": name, "type": ty, "documentation": doc})
}

/// Every resource type the API exposes, with its interactions and search
/// parameters.
fn resources() -> Vec<Value> {
    let mut v = read_and_write_resources();
    v.extend(searched_resources());
    with_profiles(with_includes(v))
}

/// The profile each type follows (FR Core), and the vital-sign profiles an
/// Observation may declare.
fn with_profiles(mut resources: Vec<Value>) -> Vec<Value> {
    for r in &mut resources {
        let ty = r["type"].as_str().unwrap_or("").to_owned();
        let Some(o) = r.as_object_mut() else { continue };
        if let Some(p) = fr_core_profile(&ty) {
            o.insert("profile".into(), json!(p));
        }
        // The usual parameters every search of the type takes.
        let usual = usual_params(&ty);
        if !usual.is_empty() {
            let list = o.entry("searchParam").or_insert_with(|| json!([]));
            if let Some(list) = list.as_array_mut() {
                for (name, kind, _) in usual {
                    if !list.iter().any(|p| p["name"] == *name) {
                        let (ty, doc) = match kind {
                            ParamKind::Token => (
                                "token",
                                "système|code, code ou |code ; des virgules pour « ou »",
                            ),
                            ParamKind::Date => {
                                ("date", "eq, gt, ge, lt, le + date ou instant (UTC)")
                            }
                        };
                        list.push(param(name, ty, doc));
                    }
                }
            }
        }
        if ty == "Observation" {
            let mut supported: Vec<String> = FR_CORE_VITAL_SIGNS_CODES
                .iter()
                .map(|c| vital_sign_profile(Some(c)))
                .collect();
            supported.push(PROFILE_VITAL_SIGNS.to_owned());
            o.insert("supportedProfile".into(), json!(supported));
        }
    }
    resources
}

/// Patient, stays, beds, orientation and monitoring's questionnaires.
fn read_and_write_resources() -> Vec<Value> {
    let list = json!([
    {
        "type": "Patient",
        "interaction": [{"code": "read"}, {"code": "create"}, {"code": "update"}, {"code": "search-type"}],
        "versioning": "versioned-update",
        "readHistory": false,
        "updateCreate": false,
        "conditionalCreate": true,
        "conditionalUpdate": false,
        "conditionalDelete": "not-supported",
        "searchParam": [
            param("identifier", "token", "system|value: INS (urn:oid:1.2.250.1.213.1.4.8 ou .9) ou IPP (urn:oid: + autorité d'affectation)"),
            param("family", "string", "Début d'un mot du nom de naissance ou d'usage, sans accents ni casse"),
            param("given", "string", "Début d'un prénom"),
            param("birthdate", "date", "Date de naissance exacte (AAAA-MM-JJ)"),
        ],
    },
    {
        "type": "Encounter",
        "interaction": [{"code": "read"}, {"code": "search-type"}],
        "versioning": "no-version",
        "readHistory": false,
        "updateCreate": false,
        "searchParam": [param("patient", "reference", "Séjours d'un patient (obligatoire)")],
        "documentation": "Séjours et mouvements alimentés par les messages ADT IHE PAM France (MLLP), et téléconsultations closes (class VR).",
    },
    {
        "type": "Location",
        "interaction": [{"code": "read"}, {"code": "search-type"}],
        "versioning": "no-version",
        "readHistory": false,
        "updateCreate": false,
        "documentation": "Unités et lits disponibles et fermés au format ROR (extension ror-location-supported-capacity).",
    },
    {
        "type": "HealthcareService",
        "interaction": [{"code": "search-type"}],
        "versioning": "no-version",
        "readHistory": false,
        "updateCreate": false,
        "searchInclude": ["HealthcareService:location"],
        "documentation": "Une offre par unité dotée de lits, avec sa Location.",
    },
    {
        "type": "ServiceRequest",
        "interaction": [{"code": "read"}],
        "versioning": "no-version",
        "readHistory": false,
        "updateCreate": false,
        "documentation": "Demandes d'orientation (SSR, HAD), lisibles par l'établissement demandeur et les destinataires.",
    },
    {
        "type": "Task",
        "interaction": [{"code": "search-type"}],
        "versioning": "no-version",
        "readHistory": false,
        "updateCreate": false,
        "searchParam": [
            {"name": "focus", "type": "reference", "documentation": "ServiceRequest/id : une tâche par établissement sollicité"},
            {"name": "patient", "type": "reference", "documentation": "Patient/id : le triage des alertes de télésurveillance"}
        ],
        "documentation": "Réponses aux demandes d'orientation, et triage des alertes de télésurveillance (l'un des deux paramètres est obligatoire).",
    },
    {
        "type": "Questionnaire",
        "interaction": [{"code": "read"}, {"code": "search-type"}],
        "versioning": "no-version",
        "readHistory": false,
        "updateCreate": false,
        "documentation": "Questionnaires des programmes de télésurveillance livrés.",
    },
    {
        "type": "QuestionnaireResponse",
        "interaction": [{"code": "search-type"}, {"code": "create"}],
        "documentation": "create : réponses envoyées par une application ou une passerelle d'objets connectés pour un patient inclus; notées par les règles du programme, alertes levées.",
        "versioning": "no-version",
        "readHistory": false,
        "updateCreate": false,
        "searchParam": [{"name": "patient", "type": "reference", "documentation": "Réponses d'un patient (obligatoire)"}],
    },
    ]);
    match list {
        Value::Array(v) => v,
        _ => Vec::new(),
    }
}

/// The resources searched by patient (or by agenda), and the directory.
fn searched_resources() -> Vec<Value> {
    let read_only = |ty: &str| {
        json!({
            "type": ty,
            "interaction": [{"code": "read"}, {"code": "search-type"}],
            "versioning": "no-version",
            "readHistory": false,
            "updateCreate": false,
        })
    };
    let by_patient = |ty: &str, doc: &str| {
        json!({
            "type": ty,
            "interaction": [{"code": "search-type"}],
            "versioning": "no-version",
            "readHistory": false,
            "updateCreate": false,
            "searchParam": [{"name": "patient", "type": "reference", "documentation": "Patient/id (obligatoire)"}],
            "documentation": doc,
        })
    };
    let with_params = |ty: &str, doc: &str, names: &[&str]| {
        let mut c = by_patient(ty, doc);
        if let Some(o) = c.as_object_mut() {
            let params: Vec<Value> = names
                .iter()
                .map(|n| json!({"name": n, "type": "reference"}))
                .collect();
            if params.is_empty() {
                o.remove("searchParam");
            } else {
                o.insert("searchParam".into(), Value::Array(params));
            }
        }
        c
    };
    let mut appointment_cap = with_params(
        "Appointment",
        "Rendez-vous aux établissements du client (patient=Patient/id ou practitioner=Practitioner/id). create : réserve un créneau libre (voir Slot) pour un patient, avec les règles du secrétariat (confirmation au patient, SIU).",
        &["patient", "practitioner"],
    );
    if let Some(o) = appointment_cap.as_object_mut() {
        o.insert(
            "interaction".into(),
            json!([{"code": "read"}, {"code": "search-type"}, {"code": "create"}]),
        );
    }
    let schedule_cap = with_params(
        "Schedule",
        "Agendas ouverts aux établissements du client.",
        &[],
    );
    let slot_cap = with_params(
        "Slot",
        "Créneaux libres d'un agenda sur 14 jours (schedule=Schedule/id obligatoire).",
        &["schedule"],
    );
    let mut audit = read_only("AuditEvent");
    if let Some(o) = audit.as_object_mut() {
        o.insert(
            "searchParam".into(),
            json!([param(
                "patient",
                "reference",
                "Accès au dossier de ce patient"
            )]),
        );
        o.insert(
            "documentation".into(),
            json!("Journal d'audit chaîné; réservé aux administrateurs de l'établissement."),
        );
    }
    let mut observation_cap = by_patient(
        "Observation",
        "Réponses aux questionnaires : mesures (LOINC, UCUM) et symptômes gradés. create : une mesure d'appareil ou de laboratoire (code LOINC, valueQuantity UCUM) classée dans le suivi du patient qui observe ce code et évaluée par les règles de son programme (alertes).",
    );
    if let Some(o) = observation_cap.as_object_mut() {
        o.insert(
            "interaction".into(),
            json!([{"code": "search-type"}, {"code": "create"}]),
        );
    }
    vec![
        observation_cap,
        by_patient(
            "Flag",
            "Alertes de télésurveillance : actives tant qu'elles ne sont pas closes.",
        ),
        by_patient(
            "CarePlan",
            "Inclusions en télésurveillance, avec le motif de fin.",
        ),
        by_patient(
            "Communication",
            "Messages entre le patient suivi et l'équipe de soins.",
        ),
        appointment_cap,
        by_patient(
            "MedicationRequest",
            "Prescriptions des téléconsultations (une par médicament, groupIdentifier = numéro d'ordonnance) ; draft tant que le médecin ne l'a pas validée.",
        ),
        by_patient(
            "DocumentReference",
            "Documents validés (CDA R2, ITI-67 ; patient.identifier=INS accepté) et ordonnances des téléconsultations.",
        ),
        by_patient("List", "Lots de soumission (ITI-66) des documents validés."),
        schedule_cap,
        slot_cap,
        read_only("Practitioner"),
        read_only("Organization"),
        audit,
        json!({
            "type": "Subscription",
            "interaction": [{"code": "read"}, {"code": "search-type"}, {"code": "create"}, {"code": "delete"}],
            "versioning": "versioned",
            "readHistory": false,
            "updateCreate": false,
            "searchParam": [param("status", "token", "active, off, error"), param("type", "token", "rest-hook, websocket")],
            "documentation": format!(
                "Abonnements du client aux changements de son établissement : criteria Encounter, DocumentReference, Flag ou Task (?patient=Patient/id en option). rest-hook : POST vide à endpoint, ou avec payload application/fhir+json la ressource en PUT à endpoint/Type/id ; chaque appel signé (X-Parcours-Signature: t=…,v1=HMAC-SHA256 de « t.corps » avec le secret de l'extension {EXT}, donné à la création), réessayé puis mis en lettre morte. websocket : Subscription/$websocket, « bind id » puis « ping id » à chaque changement.",
                EXT = super::subscription::EXT_SECRET
            ),
        }),
    ]
}

/// What an Encounter shows (a stay fed by ADT).
#[derive(Debug, Clone)]
pub struct EncounterView {
    /// Id.
    pub id: String,
    /// Patient id.
    pub patient: String,
    /// Establishment (Organization) id.
    pub establishment: String,
    /// Establishment FINESS (authority of the visit number).
    pub finess: String,
    /// PV1-19.
    pub visit_number: String,
    /// FHIR status code (planned, in-progress, onleave, finished, cancelled).
    pub status: String,
    /// PV1-2 (I, O, E...).
    pub class: Option<String>,
    /// Unit, room, bed.
    pub location: Option<String>,
    /// Period start (Unix ms).
    pub start_ms: Option<i64>,
    /// Period end (Unix ms).
    pub end_ms: Option<i64>,
    /// Version.
    pub version: i64,
    /// Last change (Unix ms).
    pub updated_ms: i64,
}

/// An Encounter resource.
pub fn encounter(e: &EncounterView) -> Value {
    let (code, display) = match e.class.as_deref() {
        Some("O") | Some("R") => ("AMB", "ambulatory"),
        Some("E") => ("EMER", "emergency"),
        _ => ("IMP", "inpatient encounter"),
    };
    let mut r = json!({
        "resourceType": "Encounter",
        "id": e.id,
        "meta": {"versionId": e.version.to_string(), "lastUpdated": instant(e.updated_ms)},
        "identifier": [{
            "type": {"coding": [{"system": CS_V2_0203, "code": "VN"}]},
            "system": format!("urn:oid:{OID_IDNATSTRUCT}.{}", e.finess),
            "value": e.visit_number,
        }],
        "status": e.status,
        "class": {"system": "http://terminology.hl7.org/CodeSystem/v3-ActCode", "code": code, "display": display},
        "subject": {"reference": format!("Patient/{}", e.patient)},
        "serviceProvider": {"reference": format!("Organization/{}", e.establishment)},
    });
    if let Some(obj) = r.as_object_mut() {
        let mut period = serde_json::Map::new();
        if let Some(s) = e.start_ms {
            period.insert("start".into(), json!(instant(s)));
        }
        if let Some(end) = e.end_ms {
            period.insert("end".into(), json!(instant(end)));
        }
        if !period.is_empty() {
            obj.insert("period".into(), Value::Object(period));
        }
        if let Some(l) = &e.location {
            let status = if matches!(e.status.as_str(), "in-progress" | "onleave") {
                "active"
            } else {
                "completed"
            };
            obj.insert(
                "location".into(),
                json!([{"location": {"display": l}, "status": status}]),
            );
        }
    }
    fr_core(r)
}

/// ROR capacity extension on a Location (ANS, ROR guide 0.6.0).
pub const EXT_ROR_CAPACITY: &str = "https://interop.esante.gouv.fr/ig/fhir/ror/StructureDefinition/ror-location-supported-capacity";
const TRE_R329: &str =
    "https://mos.esante.gouv.fr/NOS/TRE_R329-TypeCapacite/FHIR/TRE-R329-TypeCapacite";
const TRE_R330: &str =
    "https://mos.esante.gouv.fr/NOS/TRE_R330-StatutCapacite/FHIR/TRE-R330-StatutCapacite";
const TRE_R331: &str =
    "https://mos.esante.gouv.fr/NOS/TRE_R331-TemporaliteCapacite/FHIR/TRE-R331-TemporaliteCapacite";

/// What a unit's beds show in the ROR shape.
#[derive(Debug, Clone)]
pub struct BedLocationView {
    /// Unit id.
    pub id: String,
    /// Unit name.
    pub name: String,
    /// Unit code.
    pub code: String,
    /// Establishment id.
    pub establishment: String,
    /// Establishment FINESS.
    pub finess: String,
    /// Category label.
    pub category: String,
    /// Category code.
    pub category_code: String,
    /// Free beds.
    pub available: i64,
    /// Closed beds.
    pub closed: i64,
    /// Last update (Unix ms).
    pub updated_ms: i64,
}

fn capacity(status_code: &str, status_display: &str, n: i64, updated: &str) -> Value {
    json!({
        "url": EXT_ROR_CAPACITY,
        "extension": [
            {"url": "capacityType", "valueCoding": {"system": TRE_R329, "code": "01", "display": "Lit"}},
            {"url": "capacityStatus", "valueCoding": {"system": TRE_R330, "code": status_code, "display": status_display}},
            {"url": "temporalityCapacity", "valueCoding": {"system": TRE_R331, "code": "01", "display": "Actuelle"}},
            {"url": "nbCapacity", "valueInteger": n},
            {"url": "capacityUpdateDate", "valueDateTime": updated},
        ],
    })
}

/// A Location carrying the unit's available and closed beds (ROR capacity).
pub fn bed_location(b: &BedLocationView) -> Value {
    let updated = instant(b.updated_ms);
    fr_core(json!({
        "resourceType": "Location",
        "id": b.id,
        "meta": {"lastUpdated": updated},
        "identifier": [{"system": oid_system(OID_IDNATSTRUCT), "value": format!("1{}/{}", b.finess, b.code)}],
        "status": "active",
        "name": b.name,
        "type": [{"text": b.category}],
        "managingOrganization": {"reference": format!("Organization/{}", b.establishment)},
        "extension": [capacity("02", "Disponible", b.available, &updated), capacity("05", "Fermée", b.closed, &updated)],
    }))
}

/// The HealthcareService a unit provides, pointing at its Location.
pub fn bed_service(b: &BedLocationView) -> Value {
    fr_core(json!({
        "resourceType": "HealthcareService",
        "id": b.id,
        "active": true,
        "providedBy": {"reference": format!("Organization/{}", b.establishment)},
        "category": [{"coding": [{"system": "urn:parcours:bed-category", "code": b.category_code, "display": b.category}]}],
        "name": b.name,
        "location": [{"reference": format!("Location/{}", b.id)}],
    }))
}

/// An orientation request as FHIR ServiceRequest and Tasks (one per recipient).
#[derive(Debug, Clone)]
pub struct OrientationView {
    /// Id.
    pub id: String,
    /// Patient id.
    pub patient: String,
    /// Requesting establishment id.
    pub from: String,
    /// `ssr` or `had` and its label.
    pub target: (String, String),
    /// Needs.
    pub needs: String,
    /// Wished date (YYYY-MM-DD).
    pub wished_date: String,
    /// Urgent.
    pub urgent: bool,
    /// `open`, `confirmed`, `cancelled`.
    pub status: String,
    /// Created (Unix ms).
    pub created_ms: i64,
    /// Recipients: establishment id, answer code, reason, answered at.
    pub recipients: Vec<(String, String, Option<String>, Option<i64>)>,
}

/// The ServiceRequest of an orientation.
pub fn service_request(o: &OrientationView) -> Value {
    let status = match o.status.as_str() {
        "confirmed" => "completed",
        "cancelled" => "revoked",
        _ => "active",
    };
    json!({
        "resourceType": "ServiceRequest",
        "id": o.id,
        "status": status,
        "intent": "order",
        "priority": if o.urgent { "urgent" } else { "routine" },
        "category": [{"text": "Demande d'orientation"}],
        "code": {"coding": [{"system": "urn:parcours:orientation-target", "code": o.target.0, "display": o.target.1}]},
        "subject": {"reference": format!("Patient/{}", o.patient)},
        "requester": {"reference": format!("Organization/{}", o.from)},
        "performer": o.recipients.iter().map(|r| json!({"reference": format!("Organization/{}", r.0)})).collect::<Vec<_>>(),
        "occurrenceDateTime": o.wished_date,
        "authoredOn": instant(o.created_ms),
        "note": [{"text": o.needs}],
    })
}

/// One Task per recipient: its answer to the request.
pub fn orientation_tasks(o: &OrientationView) -> Vec<Value> {
    o.recipients
        .iter()
        .enumerate()
        .map(|(i, (est, answer, reason, at))| {
            let status = match answer.as_str() {
                "accepted" => "accepted",
                "refused" => "rejected",
                "chosen" => "completed",
                "closed" => "cancelled",
                _ => "requested",
            };
            let mut t = json!({
                "resourceType": "Task",
                "id": format!("{}-{}", o.id, i + 1),
                "status": status,
                "intent": "order",
                "focus": {"reference": format!("ServiceRequest/{}", o.id)},
                "for": {"reference": format!("Patient/{}", o.patient)},
                "requester": {"reference": format!("Organization/{}", o.from)},
                "owner": {"reference": format!("Organization/{est}")},
                "authoredOn": instant(o.created_ms),
            });
            if let Some(obj) = t.as_object_mut() {
                if let Some(r) = reason {
                    obj.insert("statusReason".into(), json!({"text": r}));
                }
                if let Some(at) = at {
                    obj.insert("lastModified".into(), json!(instant(*at)));
                }
            }
            t
        })
        .collect()
}
