export * from '../domain-errors.js';
export * from '../allocator/result.js';
