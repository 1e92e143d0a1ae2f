// The sign-in page: in the browser's language (or the one chosen in the console), like the console.
import { translatePage } from './i18n.js';

translatePage();
