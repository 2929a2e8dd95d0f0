// SPDX-License-Identifier: MIT
//
// pass.cpp -- the LLVM pass plugin of the cc tracker (-fpass-plugin=).
//
// clang's -fsanitize-coverage=bb,trace-stores calls __sanitizer_cov_storeN
// before every IR store, but struct copies, compound literals and
// constant-size memcpy/memset are llvm.mem* intrinsics, not stores: the
// back end lowers them into plain moves that nothing reports. This pass
// puts a call to __vp_cc_range(dst, len) before each such intrinsic and
// before each atomic read-modify-write and compare-exchange (trace-stores
// reports plain stores only: a __atomic_fetch_add into the heap went
// unseen, which verify mode found in the kill -9 torture), and
// gives every instrumented module a constructor calling __vp_cc_mark(),
// so the runtime knows the program was built with the flags.
#include "llvm/IR/Constants.h"
#include "llvm/IR/IRBuilder.h"
#include "llvm/IR/IntrinsicInst.h"
#include "llvm/IR/Module.h"
#include "llvm/IR/PassManager.h"
#include "llvm/Passes/PassBuilder.h"
#include "llvm/Passes/PassPlugin.h"
#include "llvm/Transforms/Utils/ModuleUtils.h"

using namespace llvm;

namespace {

struct VpCcPass : PassInfoMixin<VpCcPass> {
	// run -- instrument every memset/memcpy/memmove intrinsic of M and add
	// the module's marker constructor.
	PreservedAnalyses run(Module &M, ModuleAnalysisManager &)
	{
		LLVMContext &C = M.getContext();
		Type *I8P = Type::getInt8PtrTy(C);
		Type *I64 = Type::getInt64Ty(C);
		FunctionCallee range =
			M.getOrInsertFunction("__vp_cc_range", Type::getVoidTy(C), I8P, I64);
		const DataLayout &DL = M.getDataLayout();
		SmallVector<Instruction *, 16> todo;
		for (Function &F : M)
			for (BasicBlock &B : F)
				for (Instruction &I : B)
					if (isa<MemIntrinsic>(&I) || isa<AtomicRMWInst>(&I) || isa<AtomicCmpXchgInst>(&I))
						todo.push_back(&I);
		for (Instruction *I : todo) {
			IRBuilder<> b(I);
			Value *dst, *len;
			if (auto *MI = dyn_cast<MemIntrinsic>(I)) {
				dst = MI->getRawDest();
				len = b.CreateZExtOrTrunc(MI->getLength(), I64);
			} else if (auto *RMW = dyn_cast<AtomicRMWInst>(I)) {
				dst = RMW->getPointerOperand();
				len = ConstantInt::get(I64, DL.getTypeStoreSize(RMW->getValOperand()->getType()));
			} else {
				auto *X = cast<AtomicCmpXchgInst>(I);
				dst = X->getPointerOperand();
				len = ConstantInt::get(I64, DL.getTypeStoreSize(X->getNewValOperand()->getType()));
			}
			b.CreateCall(range, {b.CreatePointerCast(dst, I8P), len});
		}
		FunctionCallee mark = M.getOrInsertFunction("__vp_cc_mark", Type::getVoidTy(C));
		Function *ctor = Function::Create(FunctionType::get(Type::getVoidTy(C), false),
						  GlobalValue::InternalLinkage, "vp_cc.module_ctor", M);
		IRBuilder<> cb(BasicBlock::Create(C, "", ctor));
		cb.CreateCall(mark);
		cb.CreateRetVoid();
		appendToGlobalCtors(M, ctor, 0);
		return PreservedAnalyses::none();
	}
	static bool isRequired() { return true; }
};

} // namespace

extern "C" LLVM_ATTRIBUTE_WEAK PassPluginLibraryInfo llvmGetPassPluginInfo()
{
	return {LLVM_PLUGIN_API_VERSION, "volipmem-cc", "1", [](PassBuilder &PB) {
			PB.registerOptimizerLastEPCallback(
				[](ModulePassManager &MPM, OptimizationLevel) { MPM.addPass(VpCcPass()); });
		}};
}
