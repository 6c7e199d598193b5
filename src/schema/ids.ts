/** The database id inside a decoded global id, or null when it cannot be one of ours. */
export function databaseId(globalId: { id: string }): number | null {
  return /^[1-9]\d{0,9}$/.test(globalId.id) && Number(globalId.id) <= 2_147_483_647 ? Number(globalId.id) : null;
}
