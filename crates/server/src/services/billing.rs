//! The monthly remote-monitoring statement of an establishment and
//! programme: for each patient followed that month, each fee of the
//! programme's billing rules, due or why not; and its exports for the
//! billing office (CSV, FHIR ChargeItems). The rule is `domain::billing`'s,
//! the fees are the programme file's.

use domain::billing::{Fee, Month, PatientMonth, statement as month_statement};
use domain::policy::{Actor, Decision, EstablishmentAction, authorize_establishment};
use domain::{EnrolmentId, EstablishmentId, PatientId};
use interop::programme::Programme;

use crate::error::AppError;
use crate::services::ctx::Ctx;
use crate::services::{monitoring, patients};

/// One patient's month.
#[derive(Debug, Clone)]
pub struct PatientStatement {
    /// The patient.
    pub patient: PatientId,
    /// Name shown (an audited read).
    pub name: String,
    /// The establishment's IPP.
    pub ipp: String,
    /// The follow-up.
    pub enrolment: EnrolmentId,
    /// What happened that month.
    pub month: PatientMonth,
    /// Each fee and why it is not due (empty: due).
    pub lines: Vec<(Fee, Vec<String>)>,
}

/// An establishment's statement for a programme and a month.
#[derive(Debug)]
pub struct Statement {
    /// The establishment.
    pub establishment: EstablishmentId,
    /// The programme.
    pub programme: &'static Programme,
    /// The month.
    pub month: Month,
    /// Per patient, by start of follow-up.
    pub rows: Vec<PatientStatement>,
}

impl Statement {
    /// Total of the fees due, euro cents.
    pub fn total_due_cents(&self) -> i64 {
        self.rows
            .iter()
            .flat_map(|r| &r.lines)
            .filter(|(_, why)| why.is_empty())
            .map(|(f, _)| f.amount_cents)
            .sum()
    }
}

/// The statement of `programme` at `establishment` for `month`, for the
/// establishment's admin or desk; every patient shown is an audited read.
#[tracing::instrument(level = "debug", skip_all)]
pub async fn statement(
    ctx: Ctx<'_>,
    actor: &Actor,
    establishment: EstablishmentId,
    programme: &str,
    month: Month,
) -> Result<Statement, AppError> {
    let est = ctx
        .store
        .establishment(establishment)
        .await
        .map_err(|_| AppError::NotFound("établissement introuvable".into()))?;
    if let Decision::Deny(why) = authorize_establishment(
        actor,
        EstablishmentAction::ReadBilling,
        establishment,
        est.territory,
    ) {
        return Err(AppError::Forbidden(why.into()));
    }
    let p = monitoring::programme(programme)
        .filter(|p| !p.billing.is_empty())
        .ok_or_else(|| AppError::NotFound("programme sans règles de facturation".into()))?;
    let (from, to) = month
        .bounds()
        .ok_or_else(|| AppError::BadRequest("invalid", "mois invalide".into()))?;
    let mut rows = Vec::new();
    for f in ctx
        .store
        .billing_facts(establishment, &p.id, from, to)
        .await?
    {
        let record = patients::read(ctx, actor, f.patient).await?;
        let m = PatientMonth {
            enrolled_days: month.covered_days(f.started_at_ms, f.ended_at_ms),
            transmission_days: month.distinct_days(&f.transmissions),
            alerts: f.alerts,
            unhandled: f.unhandled,
        };
        let lines = month_statement(&p.billing, &m)
            .into_iter()
            .map(|l| (l.fee.clone(), l.why_not))
            .collect();
        rows.push(PatientStatement {
            patient: f.patient,
            name: record.traits.display_name(),
            ipp: record.ipp,
            enrolment: f.enrolment,
            month: m,
            lines,
        });
    }
    Ok(Statement {
        establishment,
        programme: p,
        month,
        rows,
    })
}

/// "73,33" from cents.
pub fn euros(cents: i64) -> String {
    format!("{},{:02}", cents / 100, (cents % 100).abs())
}

/// One CSV field: quoted when it holds the separator, a quote or a line break.
fn csv_field(s: &str) -> String {
    if s.contains([';', '"', '\n', '\r']) {
        format!("\"{}\"", s.replace('"', "\"\""))
    } else {
        s.to_owned()
    }
}

/// The statement as CSV for a spreadsheet in French (`;`, decimal comma,
/// UTF-8 with its mark): one line per patient and fee.
pub fn csv(s: &Statement) -> String {
    let mut out =
        String::from("\u{feff}mois;programme;ipp;patient;code;forfait;montant;du;motif\r\n");
    for r in &s.rows {
        for (fee, why) in &r.lines {
            let fields = [
                s.month.code(),
                s.programme.id.clone(),
                r.ipp.clone(),
                r.name.clone(),
                fee.code.clone(),
                fee.label.clone(),
                euros(fee.amount_cents),
                if why.is_empty() { "oui" } else { "non" }.to_owned(),
                why.join(" ; "),
            ];
            let line: Vec<String> = fields.iter().map(|f| csv_field(f)).collect();
            out.push_str(&line.join(";"));
            out.push_str("\r\n");
        }
    }
    out
}

/// The statement as a FHIR Bundle of ChargeItems.
pub fn fhir(s: &Statement, now_ms: i64) -> serde_json::Value {
    let code = s.month.code();
    let (from, to) = s.month.bounds().unwrap_or((0, 0));
    let charges: Vec<interop::fhir::billing::Charge<'_>> = s
        .rows
        .iter()
        .flat_map(|r| {
            r.lines
                .iter()
                .map(|(fee, why)| interop::fhir::billing::Charge {
                    enrolment: r.enrolment,
                    patient: r.patient,
                    establishment: s.establishment,
                    month: (code.as_str(), from, to),
                    fee,
                    why_not: why,
                })
                .collect::<Vec<_>>()
        })
        .collect();
    interop::fhir::billing::bundle(&charges, now_ms)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn csv_fields_are_quoted_when_they_must_be() {
        assert_eq!(csv_field("Forfait technique"), "Forfait technique");
        assert_eq!(csv_field("a ; b"), "\"a ; b\"");
        assert_eq!(csv_field("dit \"oui\""), "\"dit \"\"oui\"\"\"");
        assert_eq!(csv_field("deux\nlignes"), "\"deux\nlignes\"");
        assert_eq!(euros(7333), "73,33");
        assert_eq!(euros(2800), "28,00");
        assert_eq!(euros(5), "0,05");
    }
}
