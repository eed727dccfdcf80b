#!/usr/bin/env bash
# Issue 21: the tables of sparsejepa/tabular/README.md: Var-T-JEPA vs T-JEPA vs raw features on
# the bundled tables, the real Adult and MNIST-5k, the simulation study and its ablations
# (Var-JEPA's Table 1).
# Usage, from the repository root: experiments/tabular_var_jepa.sh [JOBS [NAME ...]]
# e.g. `experiments/tabular_var_jepa.sh 2 adult mnist` runs only those two tables.
# Trains every (table, method, seed) as its own single-thread process at niceness NICE (default
# 19), JOBS at a time (default 2, the shared machine's cores), then `sparsejepa tabular compare`
# evaluates the finished checkpoints of each table into runs/tabular/<name>/results.{json,md}
# (compare resumes finished runs: no training twice; results.json grows run by run); the tables of
# READOUT are evaluated a second time with Var-T-JEPA read at its backbone (<name>_backbone).
set -euo pipefail
export OMP_NUM_THREADS=1 MKL_NUM_THREADS=1
JOBS=${1:-2}
ONLY=" ${*:2} "
# the simulation metrics need one probe head and one pooling, not the tables' grid
ONE_HEAD_EVAL="eval.heads=[logreg] eval.pools=[mean]"
BIG_PREDICTOR="model.pred_depth=2 model.pred_width=64 train.epochs=100"
LEARNED_PREDICTOR="$BIG_PREDICTOR var.decoder_logvar=-4 var.w_kl_sx=0.1"
# name | preset | methods | overrides
RUNS=(
  "simulation|simulation|t_jepa var_t_jepa|"
  "simulation_no_kl_sx|simulation|var_t_jepa|var.w_kl_sx=0 $ONE_HEAD_EVAL"
  "simulation_no_recon_gen|simulation|var_t_jepa|var.w_recon=0 var.w_gen=0 $ONE_HEAD_EVAL"
  "simulation_no_kl|simulation|var_t_jepa|var.w_kl_sx=0 var.w_kl_z=0 var.w_kl_sy=0 $ONE_HEAD_EVAL"
  # a predictor that learns the conditional: its predictive std ranks ambiguity (tabular README)
  "simulation_pred64_dec4_klsx0.1_e100|simulation|var_t_jepa|$LEARNED_PREDICTOR $ONE_HEAD_EVAL"
  # only the predictor's size and the training length: both targets of the simulation study
  "simulation_pred64_e100|simulation|var_t_jepa|$BIG_PREDICTOR $ONE_HEAD_EVAL"
  "wine|wine|t_jepa var_t_jepa|"
  "breast_cancer|breast_cancer|t_jepa var_t_jepa|"
  "digits|digits|t_jepa var_t_jepa|"
  "adult|adult|t_jepa var_t_jepa|"
  "mnist|mnist|t_jepa var_t_jepa|"
  # the real tables with the simulation's learning predictor, 20x longer than their presets
  "adult_pred64_e20|adult|t_jepa var_t_jepa|model.pred_depth=2 model.pred_width=64 train.epochs=20"
  "mnist_pred64_e40|mnist|t_jepa var_t_jepa|model.pred_depth=2 model.pred_width=64 train.epochs=40"
)
# tables whose Var-T-JEPA checkpoints are also read at the backbone tokens (eval.var_embedding),
# copied into runs/tabular/<name>_backbone and evaluated there
READOUT=" wine breast_cancer digits adult mnist adult_pred64_e20 mnist_pred64_e40 "
sets() { for kv in $1; do printf -- '--set %s ' "$kv"; done; }
wanted() { [ "$ONLY" = "  " ] || [[ "$ONLY" == *" $1 "* ]]; }
cli() { nice -n "${NICE:-19}" python -m sparsejepa.cli tabular "$@"; }
PIDS=()
throttle() { while [ "$(jobs -rp | wc -l)" -ge "$JOBS" ]; do sleep 2; done; }
# evaluate OUT PRESET METHODS OVERRIDES: `compare` into runs/tabular/OUT, in the background
evaluate() {
  throttle
  # shellcheck disable=SC2046,SC2086
  cli compare --quiet --config "$2" --out "runs/tabular/$1" --methods $3 --set "name=$1" \
      $(sets "$4") > "runs/tabular/$1.log" 2>&1 &
  PIDS+=($!)
}
# wait for every background job; stop at the first that failed (a plain `wait` returns 0)
wait_all() {
  for pid in "${PIDS[@]}"; do
    wait "$pid" || { echo "tabular_var_jepa.sh: a $1 failed (see above, runs/tabular/*.log)" >&2
                     exit 1; }
  done
  PIDS=()
}
for spec in "${RUNS[@]}"; do
  IFS='|' read -r name preset methods extra <<<"$spec"
  wanted "$name" || continue
  for method in $methods; do for seed in 0 1 2; do
    throttle
    # shellcheck disable=SC2046
    cli train --quiet --config "$preset" --out "runs/tabular/$name/$method/seed$seed" \
        --set "name=$name-$method-s$seed" --set "model.method=$method" --set "train.seed=$seed" \
        $(sets "$extra") > /dev/null &
    PIDS+=($!)
  done; done
done
wait_all training
for spec in "${RUNS[@]}"; do
  IFS='|' read -r name preset methods extra <<<"$spec"
  wanted "$name" || continue
  [ "$methods" = var_t_jepa ] || methods="raw $methods"
  evaluate "$name" "$preset" "$methods" "$extra"
  [[ "$READOUT" == *" $name "* ]] || continue
  # a fresh copy, so that a retrained table is never read from its old checkpoints
  rm -rf "runs/tabular/${name}_backbone/var_t_jepa"
  mkdir -p "runs/tabular/${name}_backbone"
  cp -r "runs/tabular/$name/var_t_jepa" "runs/tabular/${name}_backbone/"
  evaluate "${name}_backbone" "$preset" var_t_jepa "$extra eval.var_embedding=backbone"
done
wait_all evaluation
