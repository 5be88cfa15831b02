// How every list pages: the query fields it takes, the rows it skips, and the envelope it answers with.
import { z } from 'zod';

/** `page` (from 1) and `pageSize` (1 to 100, 20 by default), to spread into a list's query schema. */
export const pageQueryFields = {
  page: z.coerce.number().int().min(1).max(100_000).default(1),
  pageSize: z.coerce.number().int().min(1).max(100).default(20),
};

export interface PageQuery {
  page: number;
  pageSize: number;
}

/** The Prisma `skip`/`take` for a page. */
export function pageWindow(query: PageQuery): { skip: number; take: number } {
  return { skip: (query.page - 1) * query.pageSize, take: query.pageSize };
}

/** `{ <items>: [...], page, pageSize, total }`, documented as the schema `id`. */
export function pageEnvelope(items: string, item: z.ZodType, id: string) {
  return z.object({ [items]: z.array(item), page: z.number().int(), pageSize: z.number().int(), total: z.number().int() }).meta({ id });
}
