/** What createBlueprint or updateBlueprint answered, as BLUEPRINT_OUTCOME selects it. */
export type BlueprintOutcome = {
  __typename: string;
  message?: string;
  path?: string[];
  problems?: { path: string[]; message: string }[];
  blueprint?: { id: string; databaseId: number };
};

/** The selection of a blueprint mutation's answer that BlueprintOutcome types: any error, or the blueprint. */
export const BLUEPRINT_OUTCOME = `__typename ... on Error { message } ... on ValidationError { path problems { path message } }
  ... on BlueprintPayload { blueprint { id databaseId } }`;
