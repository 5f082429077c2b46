//! The prescription (ordonnance) as a one-page A4 PDF: the prescriber (name,
//! profession, RPPS), the establishment (name, FINESS), the date, the patient's
//! identity traits (names, birth date, sex, INS when qualified), the medications
//! with dose, frequency and duration, free text, and at the bottom its unique
//! number with a QR code of the verification address, for the pharmacist.

use domain::consultation::Line;
use qrcodegen::{QrCode, QrCodeEcc};

use crate::pdf::{Canvas, assemble, wrap_text};

/// What is printed.
#[derive(Debug, Clone)]
pub struct Ordonnance<'a> {
    /// Unique number (`ORD-…`).
    pub number: &'a str,
    /// Prescriber's name.
    pub practitioner: &'a str,
    /// Prescriber's profession.
    pub profession: Option<&'a str>,
    /// Prescriber's RPPS number.
    pub rpps: Option<&'a str>,
    /// Establishment's name.
    pub establishment: &'a str,
    /// Its FINESS number.
    pub finess: &'a str,
    /// Date of the prescription (dd/mm/yyyy).
    pub date: &'a str,
    /// Patient: names as on the identity ("NOM Prénom").
    pub patient_name: &'a str,
    /// Birth date (dd/mm/yyyy).
    pub patient_birth: &'a str,
    /// Sex, for people ("Féminin").
    pub patient_sex: &'a str,
    /// The INS (matricule), printed only when the identity is qualified.
    pub patient_ins: Option<&'a str>,
    /// Medications.
    pub lines: &'a [Line],
    /// Free text.
    pub free_text: &'a str,
    /// The doctor's approval ("Validée le 23/11/2026 à 10:42"), if given.
    pub approval: Option<&'a str>,
    /// Where a pharmacist checks it (carried by the QR code).
    pub verify_url: &'a str,
}

/// The QR code of `text` as rows of modules (true = dark), medium error
/// correction; `None` if too long for a QR code.
pub fn qr_modules(text: &str) -> Option<Vec<Vec<bool>>> {
    let qr = QrCode::encode_text(text, QrCodeEcc::Medium).ok()?;
    let n = qr.size();
    Some(
        (0..n)
            .map(|y| (0..n).map(|x| qr.get_module(x, y)).collect())
            .collect(),
    )
}

/// Where the QR code is drawn: lower-left corner and module size, in points.
pub const QR_X: f32 = 445.0;
/// See [`QR_X`].
pub const QR_Y: f32 = 60.0;
/// Side of the code, in points (whatever its version).
pub const QR_SIDE: f32 = 100.0;

/// The PDF.
pub fn pdf(o: &Ordonnance<'_>) -> Vec<u8> {
    let mut c = Canvas::default();
    // Prescriber and establishment, top left; date, top right.
    c.text(50, 790, 13, true, o.practitioner);
    let mut y = 774;
    if let Some(p) = o.profession {
        c.text(50, y, 10, false, p);
        y -= 14;
    }
    if let Some(r) = o.rpps {
        c.text(50, y, 10, false, &format!("RPPS : {r}"));
        y -= 14;
    }
    c.text(50, y, 10, false, o.establishment);
    y -= 14;
    c.text(50, y, 10, false, &format!("FINESS : {}", o.finess));
    c.text(400, 790, 10, false, &format!("Le {}", o.date));
    c.text(400, 776, 9, false, "Téléconsultation");
    y -= 24;
    c.rule(50, 545, y);
    y -= 22;
    // Patient.
    c.text(50, y, 11, true, o.patient_name);
    y -= 14;
    c.text(
        50,
        y,
        10,
        false,
        &format!("Né(e) le {} — {}", o.patient_birth, o.patient_sex),
    );
    if let Some(ins) = o.patient_ins {
        y -= 14;
        c.text(50, y, 10, false, &format!("INS : {ins}"));
    }
    y -= 34;
    c.text(230, y, 16, true, "ORDONNANCE");
    y -= 30;
    for (i, l) in o.lines.iter().enumerate() {
        c.text(50, y, 11, true, &format!("{}. {}", i + 1, l.medication));
        y -= 15;
        let how = format!("{} — {} — pendant {}", l.dose, l.frequency, l.duration);
        for part in wrap_text(&how, 88) {
            c.text(66, y, 10, false, &part);
            y -= 13;
        }
        y -= 8;
    }
    if !o.free_text.is_empty() {
        y -= 4;
        for line in o.free_text.lines() {
            for part in wrap_text(line, 92) {
                c.text(50, y, 10, false, &part);
                y -= 13;
            }
        }
    }
    // Approval and verification, bottom.
    if let Some(a) = o.approval {
        c.text(50, 150, 10, false, a);
        c.text(50, 136, 10, true, o.practitioner);
    }
    c.rule(50, 545, 175);
    c.text(50, 100, 10, true, &format!("N° {}", o.number));
    c.text(50, 86, 8, false, "Vérifier cette ordonnance :");
    c.text(50, 74, 8, false, o.verify_url);
    if let Some(m) = qr_modules(o.verify_url) {
        let module = QR_SIDE / m.len().max(1) as f32;
        c.qr(QR_X, QR_Y, module, &m);
    }
    assemble(&[c.into_content()])
}

#[cfg(test)]
mod tests {
    use super::*;

    /// Reads the filled squares the PDF draws back into a bitmap, the way a
    /// printer would put ink on paper, then asks an independent decoder (rqrr).
    fn decode_qr_from_pdf(pdf: &[u8]) -> String {
        let text = String::from_utf8_lossy(pdf);
        let squares: Vec<(f32, f32, f32)> = text
            .lines()
            .filter(|l| l.ends_with(" re f"))
            .map(|l| {
                let v: Vec<f32> = l.split(' ').take(3).map(|n| n.parse().unwrap()).collect();
                (v[0], v[1], v[2])
            })
            .collect();
        assert!(!squares.is_empty(), "the PDF draws a QR code");
        // Rasterise at 4 pixels per point with a white margin of 20 points.
        let scale = 4.0;
        let (x0, y0) = (QR_X - 20.0, QR_Y - 20.0);
        let side = ((QR_SIDE + 40.0) * scale) as usize;
        let mut ink = vec![255u8; side * side];
        for (x, y, m) in squares {
            let px0 = ((x - x0) * scale).round() as usize;
            let px1 = ((x + m - x0) * scale).round() as usize;
            // Image rows grow downwards.
            let py0 = side - ((y + m - y0) * scale).round() as usize;
            let py1 = side - ((y - y0) * scale).round() as usize;
            for py in py0..py1 {
                for px in px0..px1 {
                    ink[py * side + px] = 0;
                }
            }
        }
        let mut img =
            rqrr::PreparedImage::prepare_from_greyscale(side, side, |x, y| ink[y * side + x]);
        let grids = img.detect_grids();
        assert_eq!(grids.len(), 1, "one QR code found");
        grids[0].decode().unwrap().1
    }

    #[test]
    fn the_qr_code_on_the_page_decodes_to_the_verification_address() {
        let lines = vec![Line {
            medication: "Paracétamol 1 g comprimé".into(),
            dose: "1 comprimé".into(),
            frequency: "3 fois par jour".into(),
            duration: "5 jours".into(),
        }];
        let url = "https://parcours.example.fr/ordonnance/verifier/ORD-7K2M-Q9XD-04HT-ZP3B";
        let o = Ordonnance {
            number: "ORD-7K2M-Q9XD-04HT-ZP3B",
            practitioner: "Dr Claire Martin",
            profession: Some("Médecin"),
            rpps: Some("10000012345"),
            establishment: "Clinique du Parc",
            finess: "690000001",
            date: "23/11/2026",
            patient_name: "DUPONT Marie",
            patient_birth: "01/02/1961",
            patient_sex: "Féminin",
            patient_ins: None,
            lines: &lines,
            free_text: "Repos.",
            approval: None,
            verify_url: url,
        };
        let pdf = pdf(&o);
        assert!(pdf.starts_with(b"%PDF-1.4"));
        assert_eq!(decode_qr_from_pdf(&pdf), url);
        assert!(
            qr_modules(&"x".repeat(5000)).is_none(),
            "too long for a QR code"
        );
    }
}
