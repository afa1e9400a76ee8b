// The bench's tables that more than one bench script builds.

/** `rows` wide TOASTed rows whose values compress (md5 words, a jsonb of tags): the compressible shape's docs. */
export const docsTableSql = (rows: number) => `CREATE TABLE docs (id bigint PRIMARY KEY, title text NOT NULL, body text NOT NULL, meta jsonb NOT NULL);
  INSERT INTO docs
    SELECT g, 'doc ' || g,
           (SELECT string_agg(md5((g * 1000 + i)::text || random()::text), ' ') FROM generate_series(1, 300) i),
           jsonb_build_object('tags', (SELECT jsonb_agg(md5((g + i)::text)) FROM generate_series(1, 60) i), 'n', g)
      FROM generate_series(1, ${rows}) g;`;
