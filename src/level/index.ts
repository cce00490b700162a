/**
 * lightning-db/level: lightning-db as an abstract-level database, for code written against Level's
 * API (level, classic-level, memory-level) and Level's ecosystem.
 */

export { LevelError } from './level-errors.js';
export { LightningLevel, type LightningLevelOptions } from './lightning-level.js';
export { LightningSnapshot } from './lightning-snapshot.js';
