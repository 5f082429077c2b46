-- PAM France ZFA-11: the patient's consent to professionals consulting their
-- DMP (1 given, 0 refused, NULL not collected); read before the DMP is looked up.
ALTER TABLE patient_dmp ADD COLUMN consultation_consent INTEGER;
