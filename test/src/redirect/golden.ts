/** The redirect renderers' golden files (testdata/; UPDATE_GOLDEN=1 rewrites them). */
import { testdata } from '../../support/golden.js';

const redirect = testdata(new URL('./testdata', import.meta.url));

export const TESTDATA = redirect.dir;
export const { read: readTestdata, assertGolden } = redirect;
