// SPDX-License-Identifier: MIT
//
// pass.cpp -- the LLVM pass plugin of the cc tracker (-fpass-plugin=).
//
// Stores. Before every IR store whose address may be in the heap (not an
// alloca, not a global) the pass puts the heap check inline:
//     if ((uintptr_t)p - __vp_cc_window.base < __vp_cc_window.len)
//             __vp_cc_store(p, size);
// two loads, a subtract, a compare and a branch the processor predicts,
// where clang's -fsanitize-coverage=trace-stores made every store a call
// into libvolipmem (on the volatile hashmap, both built by clang: 0.91-0.95x
// of the uninstrumented speed with the calls, 0.90-0.99x inline).
//
// Intrinsics. Struct copies, compound literals and constant-size
// memcpy/memset are llvm.mem* intrinsics, not stores: the back end lowers
// them into plain moves. The pass puts a call to __vp_cc_range(dst, len)
// before each such intrinsic and before each atomic read-modify-write and
// compare-exchange (a __atomic_fetch_add into the heap is not a store;
// verify mode found one unseen in the kill -9 torture).
//
// It gives every instrumented module a constructor calling __vp_cc_mark(),
// so the runtime knows the program was built with the flags.
#include "llvm/Analysis/ValueTracking.h"
#include "llvm/IR/Constants.h"
#include "llvm/IR/IRBuilder.h"
#include "llvm/IR/IntrinsicInst.h"
#include "llvm/IR/MDBuilder.h"
#include "llvm/IR/Module.h"
#include "llvm/IR/PassManager.h"
#include "llvm/Passes/PassBuilder.h"
#include "llvm/Passes/PassPlugin.h"
#include "llvm/Transforms/Utils/BasicBlockUtils.h"
#include "llvm/Transforms/Utils/ModuleUtils.h"

using namespace llvm;

namespace {

// may_be_heap -- whether a store through p can reach the heap: not when p
// is in another address space or points into an alloca or a global.
static bool may_be_heap(Value *p)
{
	if (p->getType()->getPointerAddressSpace() != 0)
		return false;
	const Value *u = getUnderlyingObject(p);
	return !isa<AllocaInst>(u) && !isa<GlobalVariable>(u);
}

struct VpCcPass : PassInfoMixin<VpCcPass> {
	// run -- instrument every store, memset/memcpy/memmove intrinsic and
	// atomic read-modify-write of M and add the module's marker
	// constructor.
	PreservedAnalyses run(Module &M, ModuleAnalysisManager &)
	{
		LLVMContext &C = M.getContext();
		Type *I8P = Type::getInt8PtrTy(C);
		Type *I64 = Type::getInt64Ty(C);
		Type *Void = Type::getVoidTy(C);
		FunctionCallee range = M.getOrInsertFunction("__vp_cc_range", Void, I8P, I64);
		FunctionCallee store = M.getOrInsertFunction("__vp_cc_store", Void, I8P, I64);
		// {base, len}: the heap being tracked, len 0 when none (cc_rt.c)
		StructType *WinTy = StructType::get(C, {I64, I64});
		Constant *win = M.getOrInsertGlobal("__vp_cc_window", WinTy);
		const DataLayout &DL = M.getDataLayout();
		MDNode *rare = MDBuilder(C).createBranchWeights(1, 1000);
		SmallVector<Instruction *, 16> todo;
		SmallVector<StoreInst *, 64> stores;
		for (Function &F : M)
			for (BasicBlock &B : F)
				for (Instruction &I : B) {
					if (isa<MemIntrinsic>(&I) || isa<AtomicRMWInst>(&I) || isa<AtomicCmpXchgInst>(&I))
						todo.push_back(&I);
					else if (auto *S = dyn_cast<StoreInst>(&I))
						if (may_be_heap(S->getPointerOperand()))
							stores.push_back(S);
				}
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
		for (StoreInst *S : stores) {
			Value *p = S->getPointerOperand();
			uint64_t n = DL.getTypeStoreSize(S->getValueOperand()->getType()).getKnownMinSize();
			IRBuilder<> b(S);
			// Relaxed atomic loads (a plain mov on x86): the runtime sets
			// the window from another thread at pmap and punmap.
			LoadInst *base = b.CreateAlignedLoad(I64, b.CreateStructGEP(WinTy, win, 0), Align(8));
			LoadInst *len = b.CreateAlignedLoad(I64, b.CreateStructGEP(WinTy, win, 1), Align(8));
			base->setAtomic(AtomicOrdering::Monotonic);
			len->setAtomic(AtomicOrdering::Monotonic);
			Value *in = b.CreateICmpULT(b.CreateSub(b.CreatePtrToInt(p, I64), base), len);
			Instruction *then = SplitBlockAndInsertIfThen(in, S, false, rare);
			IRBuilder<> tb(then);
			tb.CreateCall(store, {tb.CreatePointerCast(p, I8P), ConstantInt::get(I64, n)});
		}
		FunctionCallee mark = M.getOrInsertFunction("__vp_cc_mark", Void);
		Function *ctor = Function::Create(FunctionType::get(Void, false), GlobalValue::InternalLinkage,
						  "vp_cc.module_ctor", M);
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
