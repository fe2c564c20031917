// One-line usages shared by a subcommand and `fusionlab --help` (kept apart so the help loads no subcommand).

export const RUN_USAGE = 'run <file|sample:gpt-oss-20b|sample:gpt-oss-120b|sample:llama> --backend webgpu|cpu|agent --ranks N --preset tiny|layer --dtype bf16|f32 [--allreduce ring|one-shot|two-shot] [--workers] [--tokens T] [--seed S] [--layers L] [--inputs DIR] [--dump-outputs DIR] [--compare PASSES] [--report] [--agent ws://127.0.0.1:PORT] [--token T]';
