// WebGPU in Node: Dawn (npm `webgpu`). Node-only; the browser uses navigator.gpu.

import { existsSync, symlinkSync } from 'node:fs';
import { createRequire } from 'node:module';
import { dirname, join } from 'node:path';

let instance: GPU | undefined;

/**
 * Dawn dlopens libvulkan.so.1 from the system path or from its own directory. Debian's chromium
 * ships the loader (and SwiftShader) in /usr/lib/chromium, off the system path, so on a machine
 * with no system loader we link it next to dawn.node.
 */
function linkVulkanLoader(): void {
  if (process.platform !== 'linux') return;
  const chromiumLoader = '/usr/lib/chromium/libvulkan.so.1';
  if (!existsSync(chromiumLoader) || existsSync('/usr/lib/x86_64-linux-gnu/libvulkan.so.1')) return;
  try {
    const pkg = dirname(createRequire(import.meta.url).resolve('webgpu/package.json'));
    const target = join(pkg, 'dist', `linux-${process.arch}`, 'libvulkan.so.1');
    if (existsSync(join(pkg, 'dist', `linux-${process.arch}`)) && !existsSync(target))
      symlinkSync(chromiumLoader, target);
  } catch {
    // Read-only node_modules: the adapter request below reports what is missing.
  }
}

/** Dawn's navigator.gpu twin; timestamps unquantized so kernel times are exact. */
export async function nodeGpu(): Promise<GPU> {
  if (instance) return instance;
  // No driver named: SwiftShader from Debian's chromium (GPU hosts name theirs in VK_DRIVER_FILES).
  if (
    !process.env.VK_ICD_FILENAMES &&
    !process.env.VK_DRIVER_FILES &&
    existsSync('/usr/lib/chromium/vk_swiftshader_icd.json')
  ) {
    process.env.VK_ICD_FILENAMES = '/usr/lib/chromium/vk_swiftshader_icd.json';
  }
  process.env.XDG_RUNTIME_DIR ??= '/tmp';
  linkVulkanLoader();
  const { create, globals } = await import('webgpu');
  Object.assign(globalThis, globals);
  // FUSIONLAB_DAWN_FLAGS adds Dawn flags (space-separated), e.g.
  // `enable-dawn-features=disable_robustness` to measure what bounds checks cost.
  const extra = (process.env.FUSIONLAB_DAWN_FLAGS ?? '').split(/\s+/).filter(Boolean);
  instance = create(['disable-dawn-features=timestamp_quantization', ...extra]) as unknown as GPU;
  return instance;
}
