/** The installer tests' inputs and golden outputs (testdata/; UPDATE_GOLDEN=1 rewrites them). */
import { testdata } from '../../support/golden.js';

const installer = testdata(new URL('./testdata', import.meta.url));

/** Directory of the installer's test inputs and golden outputs. */
export const TESTDATA = installer.dir;
export const { read: readTestdata, assertGolden } = installer;
