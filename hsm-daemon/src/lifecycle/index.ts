export { installSecurity, gcmAlertKind } from './security.js';
