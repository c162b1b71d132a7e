export { installSecurity, gcmAlertKind } from './security.js';
export { checkKeyDates, ckDate, type KeyUse, type ProcessingAfterEnd } from './dates.js';
