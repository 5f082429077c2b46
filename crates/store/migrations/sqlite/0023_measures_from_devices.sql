-- A response posted as a FHIR Observation by a device or a laboratory: who
-- sent it (NULL for an answered questionnaire). Such a measure is on the
-- monitoring timeline and graded, but is not a questionnaire answered (it
-- neither counts for reminders nor shows as a QuestionnaireResponse).
-- filed_at_ms: when Parcours stored it (a measure may be dated earlier); NULL
-- for rows filed before: their submission time.
ALTER TABLE questionnaire_responses ADD COLUMN source TEXT;
ALTER TABLE questionnaire_responses ADD COLUMN filed_at_ms INTEGER;
