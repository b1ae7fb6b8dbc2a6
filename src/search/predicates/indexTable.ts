/** The index table of each parameter type. */
export const INDEX_TABLE: Record<string, string> = {
  string: 'search_string',
  token: 'search_token',
  reference: 'search_reference',
  date: 'search_date',
  number: 'search_number',
  quantity: 'search_quantity',
  uri: 'search_uri',
  composite: 'search_composite',
};
