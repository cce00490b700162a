/**
 * A bench:tx row: one store at one durability class and one concurrency, named
 * `<store>:<durability>:<concurrency>` on the child's command line and in the saved results.
 */
import { parseOneOf, parsePositiveInteger } from '../lib/args.js';
import { type StoreName, storeLabels, storeNames, type TxDurability, txDurabilities } from './stores.js';

export type Variant = `${StoreName}:${TxDurability}:${number}`;

export interface VariantParts {
  store: StoreName;
  durability: TxDurability;
  concurrency: number;
}

export function variantOf(store: StoreName, durability: TxDurability, concurrency: number): Variant {
  return `${store}:${durability}:${concurrency}`;
}

export function variantParts(variant: Variant): VariantParts {
  const [store, durability, concurrency] = variant.split(':');
  return {
    store: parseOneOf('store', storeNames, store),
    durability: parseOneOf('durability', txDurabilities, durability),
    concurrency: parsePositiveInteger('concurrency', concurrency),
  };
}

export function parseVariant(text: string | undefined): VariantParts {
  return variantParts((text ?? '') as Variant);
}

export function variantLabel(variant: Variant): string {
  const { store, durability, concurrency } = variantParts(variant);
  return `${storeLabels[store]} ${durability} x${concurrency}`;
}
