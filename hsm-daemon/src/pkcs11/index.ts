export * from './constants.generated.js';
export * from './names.js';
