// `fusionlab sample gpt-oss-20b|gpt-oss-120b|llama [--layers L] [--tp N]`: writes a generated
// vLLM-style post-grad graph (FX text) to stdout.

import type { SampleModel } from '../graph/samples/index.ts';
import { DEFAULT_SAMPLE_TP, SAMPLE_MODELS, generateSample } from '../graph/samples/index.ts';

export async function command(argv: string[]): Promise<number> {
  const fail = (msg: string) => {
    process.stderr.write(
      `fusionlab sample: ${msg} (models: ${SAMPLE_MODELS.join(', ')}; default --tp ${DEFAULT_SAMPLE_TP}; see fusionlab sample --help)\n`,
    );
    return 2;
  };
  let model: SampleModel | undefined;
  const opts: { layers?: number; tp?: number } = {};
  for (let i = 0; i < argv.length; i++) {
    const arg = argv[i]!;
    if (arg === '--layers' || arg === '--tp') {
      const v = argv[++i];
      if (v === undefined || !/^\d+$/.test(v))
        return fail(`${arg} takes a positive integer, got ${v === undefined ? 'nothing' : `'${v}'`}`);
      opts[arg === '--layers' ? 'layers' : 'tp'] = Number(v);
    } else if (arg.startsWith('--')) {
      return fail(`unknown option '${arg}'`);
    } else if (model === undefined) {
      if (!(SAMPLE_MODELS as string[]).includes(arg)) return fail(`unknown model '${arg}'`);
      model = arg as SampleModel;
    } else {
      return fail(`one model only (got '${model}' and '${arg}')`);
    }
  }
  if (model === undefined) return fail('missing model');
  let text: string;
  try {
    text = generateSample(model, opts);
  } catch (e) {
    if (e instanceof RangeError) return fail(e.message);
    throw e;
  }
  process.stdout.write(text);
  return 0;
}
