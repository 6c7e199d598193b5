export * from '../allocator/errors.js';
export * from '../allocator/result.js';
